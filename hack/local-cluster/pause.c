/*
 * The pod sandbox process of the local cluster: containerd's pinned sandbox image runs it as PID 1 of every pod.
 * It holds the pod's namespaces open, so it must stay alive doing nothing until the runtime stops it (SIGTERM,
 * or SIGINT by hand), and as PID 1 it inherits every orphaned process of the pod, whose zombies it must reap.
 * Built with `gcc -static -Os` so the image needs nothing but this one file.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int signo) {
  (void)signo;
  _exit(0);
}

static void reap(int signo) {
  (void)signo;
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

static void on(int signo, void (*handler)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  /* SA_NOCLDSTOP: a stopped child is no reason to wake up; SA_RESTART keeps pause() the only wait. */
  sa.sa_flags = SA_RESTART | (signo == SIGCHLD ? SA_NOCLDSTOP : 0);
  if (sigaction(signo, &sa, NULL) < 0) {
    fprintf(stderr, "pause: cannot install the handler for signal %d: %s\n", signo, strerror(errno));
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    printf("snn-dra pause\n");
    return 0;
  }
  on(SIGINT, stop);
  on(SIGTERM, stop);
  on(SIGCHLD, reap);
  for (;;) {
    pause();
  }
}
