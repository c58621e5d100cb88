/* The lingering close of a connection whose input was not all read (a body
 * refused before its end), done on a thread of its own. Closed at once, the
 * unread input would make the kernel reset the connection, and the web server
 * could lose the answer already sent; so the sending side is shut and the
 * rest is read until the web server closes its side, as libfcgi does. But
 * libfcgi does it in the worker, for up to 2 s: a web server that passes a
 * body on as it comes (Apache's mod_proxy_fcgi) holds the worker that long
 * for each client that stops sending, and a few such clients a second, with
 * no key, kept every worker busy. Here the worker goes on at once. */
#ifndef LINGER_H
#define LINGER_H

#define LINGER_SECONDS 2 /* libfcgi's bound */
#define LINGER_MAX 256   /* connections lingering at once; past this, closed at once */

/* Starts the thread. Returns 0, or -1 (then libfcgi's own close must do). */
int linger_start(void);

/* 1 once the thread runs. */
int linger_available(void);

/* Takes fd (a connection whose answer is complete): shuts its sending side
 * and closes it once the peer has closed its own, or after LINGER_SECONDS.
 * Never blocks. Only once linger_available(). */
void linger_close(int fd);

/* Waits until no connection lingers (at most LINGER_SECONDS): a worker that
 * exits first would close them at once. */
void linger_wait(void);

#endif
