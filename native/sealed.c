/*
 * sealed: a mesh session's TLS 1.3 records, taken over from Node once its
 * handshake is done (as the kernel's kTLS takes them over from a userspace
 * handshake; this kernel has no kTLS).
 *
 * Node's TLS socket copies every record three or four times between its
 * ciphertext rings, OpenSSL's record buffers and the JS side, concatenates a
 * multi-buffer write into a fresh allocation, finishes each write a loop turn
 * later, and costs ~43 KiB a connection however idle. Between two mesh proxies
 * the handshake (certificates, identity checks) stays Node's and OpenSSL's;
 * afterwards the records are sealed and opened here, straight between the
 * socket's buffers and the frames, with OpenSSL's own AEAD (EVP, AES-GCM).
 * The records are standard TLS 1.3 records (RFC 8446 §5.2): the peer may be a
 * plain TLS stack; nothing on the wire changes.
 *
 *   sealedWatch(ctxExternal) -> boolean
 *       Every connection of this SSL_CTX keeps its TLS 1.3 traffic secrets
 *       (a keylog callback; Node sets none unless asked to log keys).
 *   sealedCut(tlsHandle) -> { state, out, in } | null
 *       At handshake-done, for the Node TLSWrap `tlsHandle`: the record state
 *       for both directions, the handshake bytes OpenSSL produced and Node has
 *       not written yet (`out`, to be written first), and the ciphertext that
 *       arrived after the handshake and OpenSSL has not read (`in`, to be
 *       opened first). null: not available (another cipher, no secrets).
 *   sealedSeal(state, pieces[], out) -> bytes
 *       The pieces' bytes as records (16 KiB of plaintext each) into `out`,
 *       which holds sealedSize(total) bytes; a KeyUpdate first when one is due.
 *   sealedOpen(state, buf, offset, length[, into]) -> n >= 0 | code < 0
 *       Opens the one record at buf[offset, offset+length) in place (or into
 *       `into`): n bytes of application data at offset+5 (or at into[0]), or
 *       a code (see SEALED_* below).
 *   sealedRekeyAfter(state, records) -> undefined
 *       Sends a KeyUpdate once this many records went out under one key.
 *   sealedClose(state, out) -> bytes
 *       A close_notify alert record into `out` (24 bytes).
 *
 * OpenSSL's functions are looked up at run time in the node binary, as in
 * mesh_net.c: an addon loaded under a Node whose OpenSSL is hidden answers
 * false/null and the proxy keeps Node's TLS.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <node_api.h>

void *mesh_external_pointer(napi_value value);      /* external.cc */
void *mesh_object_slot(napi_value value, int index); /* external.cc */

#define RECORD_MAX 16384          /* plaintext per record (RFC 8446 §5.1) */
#define RECORD_OVERHEAD (5 + 1 + 16) /* header, inner content type, GCM tag */
#define CT_ALERT 21
#define CT_HANDSHAKE 22
#define CT_APPLICATION 23
#define HS_NEW_SESSION_TICKET 4
#define HS_KEY_UPDATE 24
/* RFC 8446 §5.5: AES-GCM keys are good for 2^24.5 full records; updated well before. */
#define DEFAULT_REKEY_AFTER (1ull << 24)

/* sealedOpen's codes */
#define SEALED_CLOSE_NOTIFY (-1) /* the peer's close_notify: its end of the stream */
#define SEALED_NOTHING (-2)      /* a KeyUpdate or session ticket, handled */
#define SEALED_UPDATE_DUE (-3)   /* a KeyUpdate asking for ours: seal something soon */
#define SEALED_BAD_RECORD (-4)   /* authentication failed (bad_record_mac) */
#define SEALED_MALFORMED (-5)    /* a length or header out of bounds */
#define SEALED_UNEXPECTED (-6)   /* a content or handshake type not allowed now */
#define SEALED_ALERT (-7)        /* the peer sent a fatal alert */

#define EVP_CTRL_GCM_GET_TAG 0x10
#define EVP_CTRL_GCM_SET_TAG 0x11

typedef void (*keylog_fn)(const void *ssl, const char *line);
typedef void (*ex_free_fn)(void *parent, void *ptr, void *ad, int idx, long argl, void *argp);

static struct {
  int ready;
  void (*ctx_set_keylog)(void *ctx, keylog_fn cb);
  keylog_fn (*ctx_get_keylog)(const void *ctx);
  int (*get_ex_new_index)(int class_index, long argl, void *argp, void *new_func, void *dup_func, ex_free_fn free_func);
  void *(*get_ex_data)(const void *ssl, int idx);
  int (*set_ex_data)(void *ssl, int idx, void *data);
  const void *(*get_current_cipher)(const void *ssl);
  uint32_t (*cipher_get_id)(const void *cipher);
  int (*is_server)(const void *ssl);
  size_t (*get_num_tickets)(const void *ssl);
  void *(*get_rbio)(const void *ssl);
  void *(*get_wbio)(const void *ssl);
  int (*bio_read)(void *bio, void *buf, int len);
  size_t (*bio_pending)(void *bio);
  void *(*ctx_new)(void);
  void (*ctx_free)(void *ctx);
  const void *(*aes_128_gcm)(void);
  const void *(*aes_256_gcm)(void);
  int (*cipher_init)(void *ctx, const void *cipher, void *engine, const uint8_t *key, const uint8_t *iv, int enc);
  int (*cipher_update)(void *ctx, uint8_t *out, int *outl, const uint8_t *in, int inl);
  int (*cipher_final)(void *ctx, uint8_t *out, int *outl);
  int (*cipher_ctrl)(void *ctx, int type, int arg, void *ptr);
  uint8_t *(*hmac)(const void *md, const void *key, int key_len, const uint8_t *d, size_t n, uint8_t *out, unsigned *out_len);
  const void *(*sha256)(void);
  const void *(*sha384)(void);
  void (*cleanse)(void *p, size_t n);
  int ex_index;
} o;

/* ---- secrets, caught by the keylog callback ---- */

/* One connection's traffic secrets until sealedCut takes them (or the SSL goes). */
typedef struct caught {
  struct caught *prev, *next;
  void *ssl;
  void *app; /* SSL_get_app_data: Node's TLSWrap */
  uint8_t client[48], server[48];
  uint8_t have; /* 1: client's, 2: server's */
  uint8_t len;
} caught;

static caught *caught_list = NULL;

static void unlink_caught(caught *c) {
  if (c->prev) c->prev->next = c->next;
  else caught_list = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
}

static void drop_caught(caught *c) {
  unlink_caught(c);
  o.cleanse(c, sizeof *c);
  free(c);
}

static void on_ssl_free(void *parent, void *ptr, void *ad, int idx, long argl, void *argp) {
  (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
  if (ptr != NULL) drop_caught((caught *)ptr);
}

static int unhex(const char *p, size_t n, uint8_t *out) {
  for (size_t i = 0; i < n / 2; i++) {
    int v = 0;
    for (int k = 0; k < 2; k++) {
      char ch = p[2 * i + k];
      int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
      if (d < 0) return 0;
      v = v * 16 + d;
    }
    out[i] = (uint8_t)v;
  }
  return 1;
}

/* Lines are "LABEL <client random, 64 hex> <secret, 64 or 96 hex>" (NSS key log format). */
static void on_keylog(const void *ssl, const char *line) {
  int which;
  if (strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0) which = 1;
  else if (strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) == 0) which = 2;
  else return;
  const char *secret = strchr(line + 24, ' ');
  if (secret == NULL) return;
  secret++;
  size_t hex = strlen(secret);
  if (hex != 64 && hex != 96) return;
  caught *c = (caught *)o.get_ex_data(ssl, o.ex_index);
  if (c == NULL) {
    c = (caught *)calloc(1, sizeof *c);
    if (c == NULL) return;
    c->ssl = (void *)ssl;
    if (o.set_ex_data((void *)ssl, o.ex_index, c) != 1) {
      free(c);
      return;
    }
    c->next = caught_list;
    if (caught_list) caught_list->prev = c;
    caught_list = c;
  }
  c->app = o.get_ex_data(ssl, 0); /* SSL_get_app_data() is ex_data 0 */
  if (!unhex(secret, hex, which == 1 ? c->client : c->server)) return;
  c->len = (uint8_t)(hex / 2);
  c->have |= (uint8_t)which;
}

#define LOOK(field, name) (o.field = (__typeof__(o.field))dlsym(RTLD_DEFAULT, name)) != NULL

static int lookup(void) {
  if (o.ready != 0) return o.ready > 0;
  o.ready = -1;
  if (!(LOOK(ctx_set_keylog, "SSL_CTX_set_keylog_callback") && LOOK(ctx_get_keylog, "SSL_CTX_get_keylog_callback") &&
        LOOK(get_ex_new_index, "CRYPTO_get_ex_new_index") && LOOK(get_ex_data, "SSL_get_ex_data") &&
        LOOK(set_ex_data, "SSL_set_ex_data") && LOOK(get_current_cipher, "SSL_get_current_cipher") &&
        LOOK(cipher_get_id, "SSL_CIPHER_get_id") && LOOK(is_server, "SSL_is_server") && LOOK(get_num_tickets, "SSL_get_num_tickets") && LOOK(get_rbio, "SSL_get_rbio") &&
        LOOK(get_wbio, "SSL_get_wbio") && LOOK(bio_read, "BIO_read") && LOOK(bio_pending, "BIO_ctrl_pending") &&
        LOOK(ctx_new, "EVP_CIPHER_CTX_new") && LOOK(ctx_free, "EVP_CIPHER_CTX_free") &&
        LOOK(aes_128_gcm, "EVP_aes_128_gcm") && LOOK(aes_256_gcm, "EVP_aes_256_gcm") &&
        LOOK(cipher_init, "EVP_CipherInit_ex") && LOOK(cipher_update, "EVP_CipherUpdate") &&
        LOOK(cipher_final, "EVP_CipherFinal_ex") && LOOK(cipher_ctrl, "EVP_CIPHER_CTX_ctrl") && LOOK(hmac, "HMAC") &&
        LOOK(sha256, "EVP_sha256") && LOOK(sha384, "EVP_sha384") && LOOK(cleanse, "OPENSSL_cleanse"))) {
    return 0;
  }
  /* CRYPTO_EX_INDEX_SSL is 0 */
  o.ex_index = o.get_ex_new_index(0, 0, NULL, NULL, NULL, on_ssl_free);
  if (o.ex_index < 0) return 0;
  o.ready = 1;
  return 1;
}

/* ---- the record state ---- */

typedef struct {
  void *ctx; /* EVP_CIPHER_CTX, keyed */
  uint8_t iv[12];
  uint8_t secret[48];
  uint64_t seq;
} direction;

typedef struct {
  direction tx, rx;
  const void *md;
  const void *cipher;
  uint8_t len;     /* the hash's and so the secrets' length */
  uint8_t key_len;
  uint8_t update_due;
  uint64_t rekey_after;
} sealed;

/* HKDF-Expand-Label(secret, label, "", n) for n up to the hash's length: one HMAC block (RFC 8446 §7.1). */
static int expand_label(const sealed *s, const uint8_t *secret, const char *label, uint8_t *out, size_t n) {
  uint8_t info[2 + 1 + 6 + 16 + 1 + 1];
  size_t ll = strlen(label);
  if (ll > 16 || n > s->len) return 0;
  size_t i = 0;
  info[i++] = (uint8_t)(n >> 8);
  info[i++] = (uint8_t)n;
  info[i++] = (uint8_t)(6 + ll);
  memcpy(info + i, "tls13 ", 6);
  i += 6;
  memcpy(info + i, label, ll);
  i += ll;
  info[i++] = 0;    /* empty context */
  info[i++] = 0x01; /* T(1) */
  uint8_t t[64];
  unsigned tl = 0;
  if (o.hmac(s->md, secret, s->len, info, i, t, &tl) == NULL || tl < n) return 0;
  memcpy(out, t, n);
  o.cleanse(t, sizeof t);
  return 1;
}

/* Keys the direction from its secret (traffic key and IV, §7.3); the sequence starts over. */
static int key_direction(const sealed *s, direction *d, int enc) {
  uint8_t key[32];
  if (!expand_label(s, d->secret, "key", key, s->key_len) || !expand_label(s, d->secret, "iv", d->iv, 12)) return 0;
  int ok = o.cipher_init(d->ctx, s->cipher, NULL, key, NULL, enc) == 1;
  o.cleanse(key, sizeof key);
  d->seq = 0;
  return ok;
}

/* The next generation of a direction's secret (KeyUpdate, §7.2). */
static int update_direction(const sealed *s, direction *d, int enc) {
  uint8_t next[48];
  if (!expand_label(s, d->secret, "traffic upd", next, s->len)) return 0;
  memcpy(d->secret, next, s->len);
  o.cleanse(next, sizeof next);
  return key_direction(s, d, enc);
}

static void nonce_for(const direction *d, uint8_t nonce[12]) {
  memcpy(nonce, d->iv, 12);
  for (int i = 0; i < 8; i++) nonce[11 - i] ^= (uint8_t)(d->seq >> (8 * i));
}

static void free_sealed(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  sealed *s = (sealed *)data;
  if (s->tx.ctx) o.ctx_free(s->tx.ctx);
  if (s->rx.ctx) o.ctx_free(s->rx.ctx);
  o.cleanse(s, sizeof *s);
  free(s);
}

/* A Buffer holding a BIO's pending bytes, or undefined when there are none. */
static napi_value drain(napi_env env, void *bio) {
  napi_value out;
  size_t n = bio ? o.bio_pending(bio) : 0;
  void *data = NULL;
  if (n == 0 || n > INT32_MAX || napi_create_buffer(env, n, &data, &out) != napi_ok) {
    napi_get_undefined(env, &out);
    return out;
  }
  size_t got = 0;
  while (got < n) {
    int r = o.bio_read(bio, (uint8_t *)data + got, (int)(n - got));
    if (r <= 0) break;
    got += (size_t)r;
  }
  return out;
}

static napi_value null_value(napi_env env) {
  napi_value v;
  napi_get_null(env, &v);
  return v;
}

static napi_value sealed_watch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  napi_valuetype type;
  void *ctx = NULL;
  bool done = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 1 &&
      napi_typeof(env, argv[0], &type) == napi_ok && type == napi_external &&
      (ctx = mesh_external_pointer(argv[0])) != NULL && lookup()) {
    keylog_fn current = o.ctx_get_keylog(ctx);
    /* Node's own callback (key logging asked for) is left alone: those connections keep Node's TLS. */
    if (current == NULL || current == on_keylog) {
      o.ctx_set_keylog(ctx, on_keylog);
      done = true;
    }
  }
  napi_get_boolean(env, done, &out);
  return out;
}

static napi_value sealed_cut(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 || o.ready <= 0) return null_value(env);
  void *app = mesh_object_slot(argv[0], 1); /* BaseObject::kSlot */
  if (app == NULL) return null_value(env);
  caught *c = caught_list;
  while (c != NULL && c->app != app) c = c->next;
  if (c == NULL || c->have != 3) return null_value(env);
  int server = o.is_server(c->ssl) == 1;
  /* A server that sends session tickets writes them after handshake-done, under the key taken here. */
  if (server && o.get_num_tickets(c->ssl) != 0) return null_value(env);
  const void *cipher = o.get_current_cipher(c->ssl);
  uint32_t id = cipher ? (o.cipher_get_id(cipher) & 0xffff) : 0;
  sealed *s = (sealed *)calloc(1, sizeof *s);
  if (s == NULL) return null_value(env);
  if (id == 0x1301 && c->len == 32) {
    s->md = o.sha256();
    s->cipher = o.aes_128_gcm();
    s->key_len = 16;
  } else if (id == 0x1302 && c->len == 48) {
    s->md = o.sha384();
    s->cipher = o.aes_256_gcm();
    s->key_len = 32;
  } else {
    free(s);
    return null_value(env);
  }
  s->len = c->len;
  s->rekey_after = DEFAULT_REKEY_AFTER;
  memcpy(s->tx.secret, server ? c->server : c->client, s->len);
  memcpy(s->rx.secret, server ? c->client : c->server, s->len);
  s->tx.ctx = o.ctx_new();
  s->rx.ctx = o.ctx_new();
  if (s->tx.ctx == NULL || s->rx.ctx == NULL || !key_direction(s, &s->tx, 1) || !key_direction(s, &s->rx, 0)) {
    free_sealed(env, s, NULL);
    return null_value(env);
  }
  void *ssl = c->ssl;
  /* The secrets now live in the state only. */
  o.set_ex_data(ssl, o.ex_index, NULL);
  drop_caught(c);
  napi_value result, state;
  if (napi_create_external(env, s, free_sealed, NULL, &state) != napi_ok) {
    free_sealed(env, s, NULL);
    return null_value(env);
  }
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "state", state);
  napi_set_named_property(env, result, "out", drain(env, o.get_wbio(ssl)));
  napi_set_named_property(env, result, "in", drain(env, o.get_rbio(ssl)));
  return result;
}

static sealed *state_arg(napi_env env, napi_value v) {
  void *p = NULL;
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_external || napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return (sealed *)p;
}

/* Seals one record of inner type `type` from the pieces' bytes at *pi/*po (advanced), n bytes in all. */
static int seal_record(sealed *s, uint8_t type, napi_env env, napi_value pieces, uint32_t count, uint32_t *pi, size_t *po,
                       const uint8_t *single, size_t n, uint8_t *out) {
  direction *d = &s->tx;
  size_t clen = n + 1 + 16;
  out[0] = CT_APPLICATION;
  out[1] = 3;
  out[2] = 3;
  out[3] = (uint8_t)(clen >> 8);
  out[4] = (uint8_t)clen;
  uint8_t nonce[12];
  nonce_for(d, nonce);
  int l = 0;
  if (o.cipher_init(d->ctx, NULL, NULL, NULL, nonce, 1) != 1 || o.cipher_update(d->ctx, NULL, &l, out, 5) != 1) return 0;
  uint8_t *w = out + 5;
  if (single != NULL) {
    if (n > 0 && o.cipher_update(d->ctx, w, &l, single, (int)n) != 1) return 0;
    w += n;
  } else {
    size_t left = n;
    while (left > 0) {
      napi_value piece;
      void *data = NULL;
      size_t len = 0;
      if (*pi >= count || napi_get_element(env, pieces, *pi, &piece) != napi_ok || napi_get_buffer_info(env, piece, &data, &len) != napi_ok) return 0;
      size_t take = len - *po < left ? len - *po : left;
      if (take > 0 && o.cipher_update(d->ctx, w, &l, (const uint8_t *)data + *po, (int)take) != 1) return 0;
      w += take;
      left -= take;
      *po += take;
      if (*po == len) {
        (*pi)++;
        *po = 0;
      }
    }
  }
  if (o.cipher_update(d->ctx, w, &l, &type, 1) != 1) return 0;
  w += 1;
  if (o.cipher_final(d->ctx, w, &l) != 1 || o.cipher_ctrl(d->ctx, EVP_CTRL_GCM_GET_TAG, 16, w) != 1) return 0;
  d->seq++;
  return 1;
}

static napi_value sealed_seal(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  sealed *s;
  void *out = NULL;
  size_t cap = 0;
  bool is_array = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 || (s = state_arg(env, argv[0])) == NULL ||
      napi_get_buffer_info(env, argv[2], &out, &cap) != napi_ok || napi_is_array(env, argv[1], &is_array) != napi_ok) {
    napi_throw_type_error(env, "MESH_SEALED_ARGS", "sealedSeal(state, pieces, out)");
    return NULL;
  }
  /* The pieces: an array of Buffers, or one Buffer. */
  uint32_t count = 0;
  size_t total = 0;
  const uint8_t *single = NULL;
  if (is_array) {
    napi_get_array_length(env, argv[1], &count);
    for (uint32_t i = 0; i < count; i++) {
      napi_value piece;
      void *data;
      size_t len;
      if (napi_get_element(env, argv[1], i, &piece) != napi_ok || napi_get_buffer_info(env, piece, &data, &len) != napi_ok) {
        napi_throw_type_error(env, "MESH_SEALED_ARGS", "sealedSeal: pieces must be Buffers");
        return NULL;
      }
      total += len;
    }
  } else {
    void *data;
    if (napi_get_buffer_info(env, argv[1], &data, &total) != napi_ok) {
      napi_throw_type_error(env, "MESH_SEALED_ARGS", "sealedSeal: pieces must be Buffers");
      return NULL;
    }
    single = (const uint8_t *)data;
  }
  size_t records = (total + RECORD_MAX - 1) / RECORD_MAX;
  size_t need = total + records * RECORD_OVERHEAD + 2 * RECORD_OVERHEAD + 5; /* room for a KeyUpdate */
  if (cap < need) {
    napi_throw_range_error(env, "MESH_SEALED_ARGS", "sealedSeal: out is too small");
    return NULL;
  }
  uint8_t *w = (uint8_t *)out;
  if (s->update_due || s->tx.seq >= s->rekey_after) {
    /* KeyUpdate(update_not_requested) under the old key, then the new one (§4.6.3). */
    static const uint8_t key_update[5] = {HS_KEY_UPDATE, 0, 0, 1, 0};
    if (!seal_record(s, CT_HANDSHAKE, env, NULL, 0, NULL, NULL, key_update, sizeof key_update, w) || !update_direction(s, &s->tx, 1)) {
      napi_throw_error(env, "MESH_SEALED_CRYPTO", "sealing failed");
      return NULL;
    }
    w += sizeof key_update + RECORD_OVERHEAD;
    s->update_due = 0;
  }
  uint32_t pi = 0;
  size_t po = 0;
  size_t left = total;
  while (left > 0) {
    size_t n = left < RECORD_MAX ? left : RECORD_MAX;
    if (!seal_record(s, CT_APPLICATION, env, argv[1], count, &pi, &po, single, n, w)) {
      napi_throw_error(env, "MESH_SEALED_CRYPTO", "sealing failed");
      return NULL;
    }
    if (single != NULL) single += n;
    w += n + RECORD_OVERHEAD;
    left -= n;
  }
  napi_create_int64(env, (int64_t)(w - (uint8_t *)out), &result);
  return result;
}

static napi_value int_value(napi_env env, int v) {
  napi_value out;
  napi_create_int32(env, v, &out);
  return out;
}

/* sealedOpen(state, buf, offset, length[, into]): `into`, when given, receives the plaintext
 * instead of the record's own bytes (it must hold the record's whole inner plaintext, its
 * content type byte included): a frame being gathered takes the bytes where they belong. */
static napi_value sealed_open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_valuetype type5 = napi_undefined;
  sealed *s;
  void *buf = NULL, *into = NULL;
  size_t cap = 0, into_cap = 0;
  int64_t offset = 0, length = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 || (s = state_arg(env, argv[0])) == NULL ||
      napi_get_buffer_info(env, argv[1], &buf, &cap) != napi_ok || napi_get_value_int64(env, argv[2], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[3], &length) != napi_ok || offset < 0 || length < 0 || (size_t)(offset + length) > cap ||
      (argc == 5 && (napi_typeof(env, argv[4], &type5) != napi_ok ||
                     (type5 != napi_undefined && napi_get_buffer_info(env, argv[4], &into, &into_cap) != napi_ok)))) {
    napi_throw_type_error(env, "MESH_SEALED_ARGS", "sealedOpen(state, buf, offset, length[, into])");
    return NULL;
  }
  uint8_t *r = (uint8_t *)buf + offset;
  size_t clen = (size_t)length;
  /* An outer type other than application_data, a length other than the header's, or one past 2^14 + 256 (§5.2). */
  if (clen < 5 + 17 || r[0] != CT_APPLICATION || r[1] != 3 || r[2] != 3 || ((size_t)r[3] << 8 | r[4]) != clen - 5 || clen - 5 > RECORD_MAX + 256) {
    return int_value(env, SEALED_MALFORMED);
  }
  size_t n = clen - 5 - 16;
  if (into != NULL && into_cap < n) {
    napi_throw_range_error(env, "MESH_SEALED_ARGS", "sealedOpen: into is too small for the record");
    return NULL;
  }
  direction *d = &s->rx;
  uint8_t nonce[12];
  nonce_for(d, nonce);
  uint8_t *p = into != NULL ? (uint8_t *)into : r + 5;
  uint8_t tag[16];
  memcpy(tag, r + 5 + n, 16);
  int l = 0;
  if (o.cipher_init(d->ctx, NULL, NULL, NULL, nonce, 0) != 1 || o.cipher_update(d->ctx, NULL, &l, r, 5) != 1 ||
      o.cipher_update(d->ctx, p, &l, r + 5, (int)n) != 1 || o.cipher_ctrl(d->ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) != 1 ||
      o.cipher_final(d->ctx, p + n, &l) != 1) {
    return int_value(env, SEALED_BAD_RECORD);
  }
  d->seq++;
  /* The inner content type is the last non-zero byte; zeros after it are padding (§5.4). */
  while (n > 0 && p[n - 1] == 0) n--;
  if (n == 0) return int_value(env, SEALED_UNEXPECTED);
  uint8_t type = p[--n];
  if (n > RECORD_MAX) return int_value(env, SEALED_MALFORMED);
  if (type == CT_APPLICATION) return int_value(env, (int)n);
  if (type == CT_ALERT) {
    if (n != 2) return int_value(env, SEALED_MALFORMED);
    return int_value(env, p[1] == 0 ? SEALED_CLOSE_NOTIFY : SEALED_ALERT);
  }
  if (type != CT_HANDSHAKE || n < 4) return int_value(env, SEALED_UNEXPECTED);
  if (p[0] == HS_NEW_SESSION_TICKET) return int_value(env, SEALED_NOTHING); /* never resumed: ignored */
  if (p[0] == HS_KEY_UPDATE && n == 5 && p[1] == 0 && p[2] == 0 && p[3] == 1 && p[4] <= 1) {
    if (!update_direction(s, &s->rx, 0)) return int_value(env, SEALED_BAD_RECORD);
    if (p[4] == 1) {
      s->update_due = 1;
      return int_value(env, SEALED_UPDATE_DUE);
    }
    return int_value(env, SEALED_NOTHING);
  }
  return int_value(env, SEALED_UNEXPECTED);
}

static napi_value sealed_rekey_after(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  sealed *s;
  int64_t n = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == 2 && (s = state_arg(env, argv[0])) != NULL &&
      napi_get_value_int64(env, argv[1], &n) == napi_ok && n > 0) {
    s->rekey_after = (uint64_t)n;
  }
  napi_get_undefined(env, &out);
  return out;
}

/* sealedClose(state, out) -> bytes: a close_notify alert, the end of our direction (§6.1). */
static napi_value sealed_close(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  sealed *s;
  void *out = NULL;
  size_t cap = 0;
  static const uint8_t close_notify[2] = {1, 0};
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 || (s = state_arg(env, argv[0])) == NULL ||
      napi_get_buffer_info(env, argv[1], &out, &cap) != napi_ok || cap < sizeof close_notify + RECORD_OVERHEAD) {
    napi_throw_type_error(env, "MESH_SEALED_ARGS", "sealedClose(state, out)");
    return NULL;
  }
  if (!seal_record(s, CT_ALERT, env, NULL, 0, NULL, NULL, close_notify, sizeof close_notify, (uint8_t *)out)) {
    napi_throw_error(env, "MESH_SEALED_CRYPTO", "sealing failed");
    return NULL;
  }
  napi_create_int32(env, (int)(sizeof close_notify + RECORD_OVERHEAD), &result);
  return result;
}

void mesh_sealed_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"sealedWatch", NULL, sealed_watch, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"sealedCut", NULL, sealed_cut, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"sealedSeal", NULL, sealed_seal, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"sealedOpen", NULL, sealed_open, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"sealedRekeyAfter", NULL, sealed_rekey_after, NULL, NULL, NULL, napi_default_jsproperty, NULL},
    {"sealedClose", NULL, sealed_close, NULL, NULL, NULL, napi_default_jsproperty, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
