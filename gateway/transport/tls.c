/* tls.c - SSL_CTX setup and ALPN (see tls.h).
 *
 * The server's preference order wins: h2, then http/1.1. A client that
 * offers neither still completes the handshake and is sniffed like a plain
 * connection (HTTP/2 preface or HTTP/1.1). */
#include "tls.h"

#include <event2/buffer.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const unsigned char alpn_server[] = "\x02h2\x08http/1.1";

static int on_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg)
{
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, alpn_server, sizeof alpn_server - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static int ssl_fail(struct gw_error *err, const char *what, const char *file)
{
    char buf[160];
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    ERR_clear_error();
    return gw_error_set(err, GW_ERR_INTERNAL_FAILURE, "%s %s: %s", what, file ? file : "", buf);
}

/* TLS 1.2 suites: forward-secret key exchange and AEAD only (no CBC, no
 * static RSA, no SHA-1 MACs), the order Mozilla's "intermediate" profile
 * uses. TLS 1.3's suites are all of that kind already. */
static const char tls12_ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

SSL_CTX *gw_tls_ctx_new(const char *cert_file, const char *key_file, const char *min_version,
                        struct gw_error *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        ssl_fail(err, "SSL_CTX_new", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(
        ctx, min_version && strcmp(min_version, "1.3") == 0 ? TLS1_3_VERSION : TLS1_2_VERSION);
    if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1) {
        ssl_fail(err, "SSL_CTX_set_cipher_list", NULL);
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Buffers are released while idle: many idle TLS connections stay cheap. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        ssl_fail(err, "cannot load certificate", cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        ssl_fail(err, "cannot load private key", key_file);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_fail(err, "private key does not match certificate", key_file);
        goto fail;
    }
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn_select, NULL);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* Whether the kernel offers kernel TLS: its "tls" upper-layer protocol is
 * listed once the tls module is loaded. */
static bool ktls_offered(void)
{
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
    char line[256] = "";
    if (f) {
        if (!fgets(line, sizeof line, f))
            line[0] = '\0';
        fclose(f);
    }
    for (char *p = strtok(line, " \n"); p; p = strtok(NULL, " \n"))
        if (strcmp(p, "tls") == 0)
            return true;
    return false;
}

void gw_tls_log_capabilities(void)
{
    const char *aes = "unknown";
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    aes = __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul") ? "AES-NI+PCLMUL"
                                                                             : "none";
#elif defined(__aarch64__)
    aes = "ARMv8 (OpenSSL detects the crypto extensions itself)";
#endif
    /* Kernel TLS stays off: server.c seals and opens records with OpenSSL
     * in user space through its own BIO (kernel TLS would need OpenSSL's
     * socket BIO); the kernel's support is only reported. */
    gw_log(GW_LOG_INFO, "tls", "%s; AES-GCM hardware support: %s; kernel TLS: %s, not used",
           OpenSSL_version(OPENSSL_VERSION), aes,
           ktls_offered() ? "offered by the kernel" : "not offered by this kernel");
}

/* ---- a BIO over two evbuffers ------------------------------------------- */

struct evbio {
    struct evbuffer *in, *out;
};

static int evbio_read(BIO *b, char *dst, int len)
{
    struct evbio *e = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    int n = evbuffer_remove(e->in, dst, (size_t)len);
    if (n <= 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    return n;
}

static int evbio_write(BIO *b, const char *src, int len)
{
    struct evbio *e = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    return evbuffer_add(e->out, src, (size_t)len) == 0 ? len : -1;
}

static long evbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int evbio_destroy(BIO *b)
{
    free(BIO_get_data(b));
    BIO_set_data(b, NULL);
    return 1;
}

static BIO_METHOD *evbio_method;
static pthread_once_t evbio_once = PTHREAD_ONCE_INIT;

static void evbio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sluice-evbuffer");
    if (!m || !BIO_meth_set_read(m, evbio_read) || !BIO_meth_set_write(m, evbio_write) ||
        !BIO_meth_set_ctrl(m, evbio_ctrl) || !BIO_meth_set_destroy(m, evbio_destroy))
        abort();
    evbio_method = m;
}

BIO *gw_tls_evbuffer_bio(struct evbuffer *in, struct evbuffer *out)
{
    /* Made once, whichever thread comes first (the test client has two). */
    pthread_once(&evbio_once, evbio_method_init);
    struct evbio *e = malloc(sizeof *e);
    BIO *b = e ? BIO_new(evbio_method) : NULL;
    if (!b)
        abort();
    *e = (struct evbio){in, out};
    BIO_set_data(b, e);
    BIO_set_init(b, 1);
    return b;
}

int gw_tls_alpn(SSL *ssl)
{
    const unsigned char *p;
    unsigned int n;
    SSL_get0_alpn_selected(ssl, &p, &n);
    if (n == 2 && memcmp(p, "h2", 2) == 0)
        return 2;
    if (n == 8 && memcmp(p, "http/1.1", 8) == 0)
        return 1;
    return 0;
}
