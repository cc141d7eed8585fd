// WriteNow: send a bufferevent's queued output in the current callback.
//
// A socket bufferevent writes only when the next loop iteration reports the
// socket writable, and it pays two epoll_ctl calls for that per message: one
// to watch for EPOLLOUT when bytes are queued, one to stop watching once they
// are out. A complete message written here, while the socket has room (the
// usual case), needs neither: when the output drains, the write event that
// queuing it registered is withdrawn again in the same iteration, and the
// worker's epoll changelist (EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST, worker.cc)
// cancels the pair before it reaches the kernel.
//
// Contract: the bufferevent's write callback does not run for bytes written
// here. Call it only where nothing waits on that callback: after the last
// byte of a message whose sender is done (a request without a body still to
// pump, a finished response). Errors are left to the bufferevent: what the
// socket did not take stays queued, and its own write reports the failure
// through the event callback as before.
#pragma once

#include <event2/bufferevent.h>

namespace sessiond {

void WriteNow(bufferevent* bev);

}  // namespace sessiond
