#include "io/http_connection.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace rlaif {
namespace {

// The numeric host and the port of a socket's local or peer address, as httplib writes them
// into Request::local_addr/remote_addr; false when `fd` is not a connected internet socket.
bool socket_address(int fd, bool peer, std::string& host, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  auto* a = reinterpret_cast<sockaddr*>(&addr);
  if ((peer ? ::getpeername(fd, a, &len) : ::getsockname(fd, a, &len)) != 0) return false;
  if (addr.ss_family != AF_INET && addr.ss_family != AF_INET6) return false;
  char name[NI_MAXHOST];
  if (::getnameinfo(a, len, name, sizeof name, nullptr, 0, NI_NUMERICHOST) != 0) return false;
  host = name;
  port = ntohs(addr.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(a)->sin_port
                                         : reinterpret_cast<sockaddr_in6*>(a)->sin6_port);
  return true;
}

bool is_connection_of(int fd, const httplib::Request& req) {
  std::string host;
  int port = 0;
  return socket_address(fd, true, host, port) && port == req.remote_port &&
         host == req.remote_addr && socket_address(fd, false, host, port) && port == req.local_port;
}

}  // namespace

int connection_of(const httplib::Request& req) {
  thread_local int last = -1;
  if (last >= 0 && is_connection_of(last, req)) return last;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    const std::string name = entry.path().filename().string();
    const int fd = std::atoi(name.c_str());
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (is_connection_of(fd, req)) return last = fd;
  }
  return -1;
}

bool peer_closed(int sock) {
  pollfd p{sock, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if ((p.revents & (POLLERR | POLLHUP | POLLRDHUP)) != 0) return true;
  if ((p.revents & POLLIN) == 0) return false;
  char byte = 0;
  const ssize_t n = ::recv(sock, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

}  // namespace rlaif
