/* tls.h - the TLS context: certificate, key and ALPN selection (h2 first,
 * then http/1.1). server.c wraps accepted sockets with it. */
#ifndef SLUICE_GW_TLS_H
#define SLUICE_GW_TLS_H

#include <openssl/ssl.h>

#include "error.h"

/* Returns a new server SSL_CTX loaded from PEM files, or NULL with "err"
 * set: TLS "min_version" ("1.2" or "1.3") and up, the server's cipher
 * order, TLS 1.2 limited to ECDHE with AEAD ciphers, no compression or
 * renegotiation. The caller frees it with SSL_CTX_free. */
SSL_CTX *gw_tls_ctx_new(const char *cert_file, const char *key_file, const char *min_version,
                        struct gw_error *err);

/* Logs the OpenSSL version, whether the CPU accelerates AES-GCM, and
 * whether the kernel offers kernel TLS (event "tls"). */
void gw_tls_log_capabilities(void);

/* After the handshake: 2 if ALPN chose "h2", 1 for "http/1.1", 0 if none. */
int gw_tls_alpn(SSL *ssl);

struct evbuffer;
/* Returns a new BIO for an SSL over evbuffers instead of a socket: its
 * reads take ciphertext from the front of "in" (retry when it is empty),
 * its writes append records to "out" and never fail short. Both are
 * borrowed and must outlive the BIO; SSL_set_bio(ssl, bio, bio) hands the
 * BIO to the SSL, which frees it. Aborts if OpenSSL cannot allocate. */
BIO *gw_tls_evbuffer_bio(struct evbuffer *in, struct evbuffer *out);

#endif
