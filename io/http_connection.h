// The connection under an HTTP request that `rlaif serve` (io/openai_server.h) is answering,
// and whether its client has gone: httplib 0.11 hands request handlers no socket, and a server
// that generates for a client who left wastes the compute.
#pragma once

#include <httplib.h>

namespace rlaif {

// The socket of the connection `req` came on, or -1. The (peer, local) address pair names the
// one connection, which stays open while the request's handler runs; the last socket found on
// the calling thread is tried first (httplib serves a keep-alive connection on one thread from
// start to end), else this process's descriptors are searched.
int connection_of(const httplib::Request& req);

// Whether the peer has closed (or reset) the connection `fd`. A request's body has been read in
// full before its handler runs, so the only thing a live client can make readable is a
// pipelined request, which recv(MSG_PEEK) tells from an end of stream. A client that shuts down
// only its sending half counts as gone.
bool peer_closed(int fd);

}  // namespace rlaif
