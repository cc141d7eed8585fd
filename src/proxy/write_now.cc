#include "proxy/write_now.h"

#include <event2/buffer.h>
#include <event2/bufferevent_struct.h>  // ev_write: the event bufferevent_writecb itself deletes
#include <event2/event.h>

namespace sessiond {

void WriteNow(bufferevent* bev) {
  evbuffer* out = bufferevent_get_output(bev);
  if (evbuffer_get_length(out) == 0) return;
  const evutil_socket_t fd = bufferevent_getfd(bev);
  if (fd < 0) return;
  // One writev of at most the whole buffer. A short write or EAGAIN leaves
  // the rest queued for the pending write event; an error (EPIPE, ECONNRESET)
  // leaves everything queued, and the bufferevent's own write meets it again.
  // A socket bufferevent freezes the front of its output so that only its
  // own write callback drains it; that callback thaws it around the write
  // exactly like this.
  evbuffer_unfreeze(out, /*at_front=*/1);
  const int n = evbuffer_write(out, fd);
  evbuffer_freeze(out, /*at_front=*/1);
  if (n <= 0) return;
  if (evbuffer_get_length(out) == 0) event_del(&bev->ev_write);  // as bufferevent_writecb does when drained
}

}  // namespace sessiond
