#include "linger.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A slot per lingering connection: its fd (-1: free) and when to give up. */
static struct {
    int fd;
    time_t deadline;
} slots[LINGER_MAX];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static int epoll_fd = -1;

static void release(int i)
{
    pthread_mutex_lock(&slots_lock);
    close(slots[i].fd); /* (closing removes it from the epoll set) */
    slots[i].fd = -1;
    pthread_mutex_unlock(&slots_lock);
}

/* Reads and drops what the peer sends; 1 once it has closed (or failed).
 * A bounded amount per call: one peer that keeps sending must not keep the
 * thread from the others and from the deadlines. */
static int peer_done(int fd)
{
    char scratch[16384];

    for (int reads = 0; reads < 16; reads++) {
        ssize_t got = read(fd, scratch, sizeof scratch);
        if (got > 0)
            continue;
        return got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
    return 0;
}

static void *linger_thread(void *unused)
{
    struct epoll_event ready[64];

    (void)unused;
    for (;;) {
        int n = epoll_wait(epoll_fd, ready, sizeof ready / sizeof *ready, 250);
        struct timespec now;

        for (int i = 0; i < n; i++) {
            int slot = (int)ready[i].data.u32;
            if (peer_done(slots[slot].fd))
                release(slot);
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        pthread_mutex_lock(&slots_lock);
        for (int i = 0; i < LINGER_MAX; i++)
            if (slots[i].fd >= 0 && now.tv_sec >= slots[i].deadline) {
                close(slots[i].fd);
                slots[i].fd = -1;
            }
        pthread_mutex_unlock(&slots_lock);
    }
    return NULL;
}

int linger_start(void)
{
    pthread_t thread;
    sigset_t all, old;
    int rc;

    for (int i = 0; i < LINGER_MAX; i++)
        slots[i].fd = -1;
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0)
        return -1;
    /* Signals are the main thread's. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&thread, NULL, linger_thread, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        close(epoll_fd);
        epoll_fd = -1;
        return -1;
    }
    pthread_detach(thread);
    return 0;
}

void linger_wait(void)
{
    struct timespec pause = {.tv_nsec = 20 * 1000 * 1000};

    if (epoll_fd < 0)
        return;
    for (int waited = 0; waited <= LINGER_SECONDS * 50; waited++) {
        int lingering = 0;
        pthread_mutex_lock(&slots_lock);
        for (int i = 0; i < LINGER_MAX; i++)
            lingering += slots[i].fd >= 0;
        pthread_mutex_unlock(&slots_lock);
        if (!lingering)
            return;
        nanosleep(&pause, NULL);
    }
}

int linger_available(void)
{
    return epoll_fd >= 0;
}

void linger_close(int fd)
{
    struct epoll_event event = {.events = EPOLLIN | EPOLLRDHUP};
    struct timespec now;
    int slot = -1;

    shutdown(fd, SHUT_WR);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&slots_lock);
    for (int i = 0; i < LINGER_MAX && slot < 0; i++)
        if (slots[i].fd < 0)
            slot = i;
    if (slot >= 0) {
        slots[slot].fd = fd;
        slots[slot].deadline = now.tv_sec + LINGER_SECONDS;
        event.data.u32 = (uint32_t)slot;
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0)
            slots[slot].fd = -1, slot = -1;
    }
    pthread_mutex_unlock(&slots_lock);
    if (slot < 0)
        close(fd); /* too many at once: a reset now and then beats a held worker */
}
