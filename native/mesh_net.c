/*
 * mesh_net: the socket options and limits Node cannot reach on its own.
 *
 *   originalDestination(fd) -> { address, port, family }
 *       The destination a connection had before iptables REDIRECT rewrote it
 *       (getsockopt SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST).
 *   setTransparent(fd) -> undefined
 *       Sets IP_TRANSPARENT (and IPV6_TRANSPARENT on IPv6 sockets) so a listener
 *       accepts connections the TPROXY target steers to it.
 *   raiseFdLimit() -> { soft, hard }
 *       Sets the soft RLIMIT_NOFILE to the hard limit and returns the limits
 *       then in effect, so the proxy knows how many descriptors it may hold.
 *
 *   trimMemory() -> boolean
 *       glibc's malloc_trim: the allocator's free pages back to the kernel.
 *   holdAllocatorPages() -> boolean
 *       glibc keeps freed memory for reuse instead of trimming it as it goes
 *       (the proxy trims itself: trimMemory, when load falls).
 *   memoryPressure() -> undefined
 *       V8's MemoryPressureNotification(kModerate): an incremental collection
 *       that reduces the heap.
 *
 *   releaseFilePages() -> number
 *       The node executable's clean, read-only pages are unmapped from this
 *       process (they stay in the page cache); bytes that were resident.
 *   noSessionTickets(external) -> boolean
 *       A server SSL_CTX behind a Node SecureContext (its `_external`) sends no
 *       TLS 1.3 session tickets.
 *
 * Errors are thrown as JS Errors with a stable `code` (MESH_*), plus `errno`
 * and `syscall`, so callers can map them to metrics labels without parsing text.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <math.h>
#include <limits.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/netfilter_ipv4.h>
#include <node_api.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif
#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif
#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif

static const char *code_for_errno(int err) {
  switch (err) {
    case ENOENT: return "MESH_NO_ORIGINAL_DST";
    case EPERM:
    case EACCES: return "MESH_PERMISSION_DENIED";
    case EBADF:
    case ENOTSOCK: return "MESH_BAD_SOCKET";
    case ENOPROTOOPT:
    case EOPNOTSUPP: return "MESH_UNSUPPORTED";
    default: return "MESH_SYSCALL_FAILED";
  }
}

static napi_value throw_errno(napi_env env, const char *syscall, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s (%s, errno %d)", what, strerror(err), syscall, err);
  napi_value code, message, error, errno_v, syscall_v;
  napi_create_string_utf8(env, code_for_errno(err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  napi_create_int32(env, err, &errno_v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_v);
  napi_set_named_property(env, error, "errno", errno_v);
  napi_set_named_property(env, error, "syscall", syscall_v);
  napi_throw(env, error);
  return NULL;
}

static int read_fd_arg(napi_env env, napi_callback_info info, int *fd) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_typeof(env, argv[0], &type) != napi_ok || type != napi_number ||
      napi_get_value_int32(env, argv[0], fd) != napi_ok || *fd < 0) {
    napi_throw_type_error(env, "MESH_BAD_SOCKET", "expected a file descriptor (non-negative integer)");
    return -1;
  }
  return 0;
}

/* Reads the fd argument and the socket's local address: both calls need them. */
static int fd_and_local_address(napi_env env, napi_callback_info info, int *fd, struct sockaddr_storage *local) {
  if (read_fd_arg(env, info, fd) != 0) return -1;
  socklen_t len = sizeof *local;
  memset(local, 0, sizeof *local);
  if (getsockname(*fd, (struct sockaddr *)local, &len) != 0) {
    throw_errno(env, "getsockname", "cannot read the socket's local address", errno);
    return -1;
  }
  return 0;
}

static napi_value make_address(napi_env env, const struct sockaddr_storage *ss) {
  char text[INET6_ADDRSTRLEN];
  int port, family;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
    port = ntohs(sin->sin_port);
    family = 4;
  } else {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
    inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
    port = ntohs(sin6->sin6_port);
    family = 6;
  }
  napi_value obj, address, port_v, family_v;
  napi_create_object(env, &obj);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &address);
  napi_create_int32(env, port, &port_v);
  napi_create_int32(env, family, &family_v);
  napi_set_named_property(env, obj, "address", address);
  napi_set_named_property(env, obj, "port", port_v);
  napi_set_named_property(env, obj, "family", family_v);
  return obj;
}

/* An IPv4 connection accepted on a dual-stack (::) listener is an AF_INET6
 * socket with a v4-mapped local address, but conntrack keeps it as IPv4:
 * it must be asked through SOL_IP. So the level follows the local address. */
static int is_ipv4_connection(const struct sockaddr_storage *local) {
  if (local->ss_family == AF_INET) return 1;
  if (local->ss_family != AF_INET6) return 0;
  const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)local;
  return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr);
}

static napi_value original_destination(napi_env env, napi_callback_info info) {
  int fd;
  struct sockaddr_storage local;
  if (fd_and_local_address(env, info, &fd, &local) != 0) return NULL;

  struct sockaddr_storage dst;
  socklen_t len;
  memset(&dst, 0, sizeof dst);
  if (is_ipv4_connection(&local)) {
    len = sizeof(struct sockaddr_in);
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) != 0)
      return throw_errno(env, "getsockopt(SO_ORIGINAL_DST)",
                         "no original destination (connection was not redirected)", errno);
  } else if (local.ss_family == AF_INET6) {
    len = sizeof(struct sockaddr_in6);
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len) != 0)
      return throw_errno(env, "getsockopt(IP6T_SO_ORIGINAL_DST)",
                         "no original destination (connection was not redirected)", errno);
  } else {
    return throw_errno(env, "getsockname", "not an IP socket", EOPNOTSUPP);
  }
  return make_address(env, &dst);
}

static napi_value set_transparent(napi_env env, napi_callback_info info) {
  int fd;
  struct sockaddr_storage local;
  if (fd_and_local_address(env, info, &fd, &local) != 0) return NULL;

  int one = 1;
  if (local.ss_family == AF_INET6) {
    /* A dual-stack listener takes TPROXY'd IPv4 and IPv6 connections alike:
     * IPV6_TRANSPARENT covers both on an AF_INET6 socket. */
    if (setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof one) != 0)
      return throw_errno(env, "setsockopt(IPV6_TRANSPARENT)",
                         "cannot make the socket transparent (needs CAP_NET_ADMIN or CAP_NET_RAW)", errno);
  } else {
    if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one) != 0)
      return throw_errno(env, "setsockopt(IP_TRANSPARENT)",
                         "cannot make the socket transparent (needs CAP_NET_ADMIN or CAP_NET_RAW)", errno);
  }
  return NULL;
}

/* SO_LINGER {on, 0}: the next close() sends a RST instead of a FIN. For a TCP
 * socket under a TLS layer, where Node's resetAndDestroy() cannot be used: the
 * TLS layer is torn down first, then the close resets. */
static napi_value reset_on_close(napi_env env, napi_callback_info info) {
  int fd;
  if (read_fd_arg(env, info, &fd) != 0) return NULL;
  struct linger l = { .l_onoff = 1, .l_linger = 0 };
  if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0)
    return throw_errno(env, "setsockopt(SO_LINGER)", "cannot arm a reset on close", errno);
  return NULL;
}

/* RLIM_INFINITY is all ones: as a double it would read as 1.8e19 descriptors. */
static double limit_value(rlim_t v) {
  return v == RLIM_INFINITY ? INFINITY : (double)v;
}

/* Node raises the soft limit itself at start-up (node.cc, PlatformInit) unless
 * an embedder opts out (kNoAdjustResourceLimits); doing it here makes the
 * proxy's limit a number it read, not an assumption about its runtime. Raising
 * the soft limit up to the hard one needs no privilege. */
static napi_value raise_fd_limit(napi_env env, napi_callback_info info) {
  (void)info;
  struct rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
    return throw_errno(env, "getrlimit(RLIMIT_NOFILE)", "cannot read the descriptor limit", errno);
  if (lim.rlim_cur != lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
      return throw_errno(env, "setrlimit(RLIMIT_NOFILE)", "cannot raise the descriptor limit to the hard limit", errno);
  }
  /* Read back: what the kernel keeps is the answer, not what was asked for. */
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
    return throw_errno(env, "getrlimit(RLIMIT_NOFILE)", "cannot read the descriptor limit", errno);
  napi_value obj, soft, hard;
  napi_create_object(env, &obj);
  napi_create_double(env, limit_value(lim.rlim_cur), &soft);
  napi_create_double(env, limit_value(lim.rlim_max), &hard);
  napi_set_named_property(env, obj, "soft", soft);
  napi_set_named_property(env, obj, "hard", hard);
  return obj;
}

/* trimMemory() -> boolean: hands the C allocator's free pages back to the
 * kernel (glibc malloc_trim). TLS sessions live in OpenSSL's malloc'd memory;
 * after thousands of connections close, glibc keeps their pages and RSS stays
 * at its peak (measured: 600 MB an hour after 9,500 mTLS connections closed,
 * 190-290 MB after a trim). True when memory was released. Elsewhere than
 * glibc: false, nothing done. */
static napi_value trim_memory(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
#if defined(__GLIBC__)
  napi_get_boolean(env, malloc_trim(0) == 1, &out);
#else
  napi_get_boolean(env, false, &out);
#endif
  return out;
}

/* holdAllocatorPages() -> boolean. Under opaque bulk traffic each read is a
 * 64 KB buffer, malloc'd and soon freed; glibc gave the top of its heap back
 * whenever more than 128 KB lay free there, and the next reads took it again,
 * each page a fault and a zeroing: 30-220 minor faults per MiB carried (bench/
 * profile --bulk-mib on a plaintext path, ~15% of the client-side proxy's CPU
 * in perf), none with this. Freed memory now stays with the allocator up to
 * 64 MB at the top, and allocations up to 4 MB come from its heap rather than
 * a mapping each; the proxy's reclaimer (proxy/memory.ts) trims explicitly
 * when load falls. Setting either bound also stops glibc moving them itself.
 * Elsewhere than glibc: false, nothing done. */
static napi_value hold_allocator_pages(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
#if defined(__GLIBC__)
  int ok = mallopt(M_TRIM_THRESHOLD, 64 << 20) == 1;
  ok = mallopt(M_MMAP_THRESHOLD, 4 << 20) == 1 && ok;
  napi_get_boolean(env, ok, &out);
#else
  napi_get_boolean(env, false, &out);
#endif
  return out;
}

/* releaseFilePages() -> number. Node's executable is ~95 MB of code and
 * read-only data; start-up touches ~40 MB of it (the V8 snapshot, code that
 * runs once, symbol tables read by the dynamic linker, and the kernel maps 64 KB
 * around each fault), and those pages stay mapped, counted in the proxy's RSS
 * and OOM score, for as long as it lives, though an idle or busy proxy uses a
 * fraction. They are clean file pages: madvise(MADV_DONTNEED) drops the
 * mappings and leaves the pages in the page cache, so a page used again comes
 * back by a minor fault, no disk read. Only read-only private mappings of the
 * executable with no private (copy-on-write) page are touched: dropping a
 * written private page would revert it to the file's bytes. Returns the bytes
 * that were resident in the mappings released; 0 when nothing qualified. */
#define MAX_RELEASED 64
static napi_value release_file_pages(napi_env env, napi_callback_info info) {
  (void)info;
  char exe[PATH_MAX];
  char line[PATH_MAX + 128];
  unsigned long start[MAX_RELEASED], end[MAX_RELEASED], resident_kb[MAX_RELEASED];
  int count = 0;
  double released = 0;
  napi_value out;
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  FILE *smaps = n > 0 ? fopen("/proc/self/smaps", "re") : NULL;
  if (smaps != NULL) {
    exe[n] = '\0';
    unsigned long lo = 0, hi = 0, rss_kb = 0;
    int candidate = 0;
    while (fgets(line, sizeof line, smaps) != NULL) {
      unsigned long a, b, kb;
      char perms[8];
      int path_at = 0;
      if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &a, &b, perms, &path_at) == 3 && path_at > 0) {
        char *path = line + path_at;
        path[strcspn(path, "\n")] = '\0';
        candidate = perms[1] == '-' && perms[3] == 'p' && strcmp(path, exe) == 0;
        lo = a;
        hi = b;
        rss_kb = 0;
      } else if (candidate && sscanf(line, "Rss: %lu kB", &kb) == 1) {
        rss_kb = kb;
      } else if (candidate && sscanf(line, "Anonymous: %lu kB", &kb) == 1) {
        if (kb == 0 && rss_kb > 0 && count < MAX_RELEASED) {
          start[count] = lo;
          end[count] = hi;
          resident_kb[count] = rss_kb;
          count++;
        }
        candidate = 0;
      }
    }
    fclose(smaps);
  }
  for (int i = 0; i < count; i++) {
    if (madvise((void *)start[i], end[i] - start[i], MADV_DONTNEED) == 0) released += (double)resident_kb[i] * 1024;
  }
  napi_create_double(env, released, &out);
  return out;
}

void mesh_memory_pressure(void); /* external.cc */

/* memoryPressure(): V8 is told memory is short (see external.cc). */
static napi_value memory_pressure(napi_env env, napi_callback_info info) {
  (void)info;
  mesh_memory_pressure();
  napi_value out;
  napi_get_undefined(env, &out);
  return out;
}

/* noSessionTickets(ctx) -> boolean. A TLS 1.3 server sends each client two
 * session tickets after the handshake (OpenSSL's default); the client keeps
 * them with the connection (measured ~5 KB per idle connection in the client
 * proxy) and the server spends a ticket encryption on each. Proxies never
 * resume sessions with each other, so the mesh's server context sends none:
 * SSL_CTX_set_num_tickets(ctx, 0). Node has no option for it, but its
 * SecureContext hands out its SSL_CTX* as a v8::External (`_external`), and
 * Node's own OpenSSL exports the function: looked up at run time, so the addon
 * still loads under a Node whose OpenSSL is hidden (and answers false). */
typedef int (*ssl_ctx_set_num_tickets_fn)(void *ctx, size_t n);
void *mesh_external_pointer(napi_value value); /* external.cc */

static napi_value no_session_tickets(napi_env env, napi_callback_info info) {
  static ssl_ctx_set_num_tickets_fn set_num_tickets = NULL;
  static int looked_up = 0;
  size_t argc = 1;
  napi_value argv[1];
  napi_value out;
  napi_valuetype type;
  void *ctx = NULL;
  bool done = false;
  if (!looked_up) {
    set_num_tickets = (ssl_ctx_set_num_tickets_fn)dlsym(RTLD_DEFAULT, "SSL_CTX_set_num_tickets");
    looked_up = 1;
  }
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 1 &&
      napi_typeof(env, argv[0], &type) == napi_ok && type == napi_external &&
      (ctx = mesh_external_pointer(argv[0])) != NULL && set_num_tickets != NULL) {
    done = set_num_tickets(ctx, 0) == 1;
  }
  napi_get_boolean(env, done, &out);
  return out;
}

void mesh_sealed_init(napi_env env, napi_value exports); /* sealed.c */

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"originalDestination", NULL, original_destination, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"setTransparent", NULL, set_transparent, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"resetOnClose", NULL, reset_on_close, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"raiseFdLimit", NULL, raise_fd_limit, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"trimMemory", NULL, trim_memory, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"holdAllocatorPages", NULL, hold_allocator_pages, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"memoryPressure", NULL, memory_pressure, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"releaseFilePages", NULL, release_file_pages, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"noSessionTickets", NULL, no_session_tickets, NULL, NULL, NULL, napi_default_jsproperty, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  mesh_sealed_init(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
