"""Generated from api.proto in this folder by hack/gen-protos.sh."""
