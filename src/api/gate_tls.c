/*
 * TLS of the API, terminated by the gate (apigate.c) so that it can read
 * the HTTP/2 frames: a context made from the PEM texts of the last good
 * configuration (TLS 1.2 or later, ALPN h2, client certificates when
 * tls-client-ca is set), made again on SIGHUP when they changed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "conf.h"
#include "gate_int.h"

static int
gate_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char h2[] = { 2, 'h', '2' };
	unsigned char *sel;

	if (SSL_select_next_proto(&sel, outlen, h2, sizeof(h2), in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static int
gate_tls_certs(SSL_CTX *ctx, const char *pem, int ca, char *err,
    size_t errlen)
{
	BIO	*bio;
	X509	*x;
	int	 n = 0, rc = 0;

	if ((bio = BIO_new_mem_buf(pem, -1)) == NULL)
		return -1;
	while (rc == 0 && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) !=
	    NULL) {
		if (ca) {
			if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx),
			    x) != 1 || SSL_CTX_add_client_CA(ctx, x) != 1)
				rc = -1;
		} else if (n == 0) {
			if (SSL_CTX_use_certificate(ctx, x) != 1)
				rc = -1;
		} else if (SSL_CTX_add1_chain_cert(ctx, x) != 1)
			rc = -1;
		X509_free(x);
		n++;
	}
	ERR_clear_error();
	BIO_free(bio);
	if (rc == 0 && n == 0)
		rc = -1;
	if (rc == -1)
		snprintf(err, errlen, "%s: no usable certificate",
		    ca ? "tls-client-ca" : "tls-cert");
	return rc;
}

/* A TLS context from the PEM texts of a configuration; NULL: why in err. */
static SSL_CTX *
gate_tls_ctx(const struct config *conf, char *err, size_t errlen)
{
	static const unsigned char sid[] = "rtpproxyd";
	SSL_CTX		*ctx;
	BIO		*bio;
	EVP_PKEY	*key;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		snprintf(err, errlen, "SSL_CTX_new failed");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_alpn_select_cb(ctx, gate_alpn, NULL);
	SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
	if (gate_tls_certs(ctx, conf->tls_pem[0], 0, err, errlen) == -1)
		goto fail;
	if ((bio = BIO_new_mem_buf(conf->tls_pem[1], -1)) == NULL)
		goto fail;
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (key == NULL || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		EVP_PKEY_free(key);
		snprintf(err, errlen, "tls-key: not a private key, or not the "
		    "key of tls-cert");
		goto fail;
	}
	EVP_PKEY_free(key);
	if (conf->tls_pem[2] != NULL) {
		if (gate_tls_certs(ctx, conf->tls_pem[2], 1, err, errlen) ==
		    -1)
			goto fail;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
		    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	ERR_clear_error();
	return ctx;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

static void
gate_pem_free(struct gate_tls *t)
{
	int i;

	for (i = 0; i < 3; i++) {
		if (t->pem[i] != NULL) {
			explicit_bzero(t->pem[i], strlen(t->pem[i]));
			free(t->pem[i]);
		}
		t->pem[i] = NULL;
	}
}

static void
gate_pem_keep(struct gate_tls *t, const struct config *conf)
{
	int i;

	gate_pem_free(t);
	for (i = 0; i < 3; i++)
		if (conf->tls_pem[i] != NULL)
			t->pem[i] = xstrdup(conf->tls_pem[i]);
}

static int
gate_pem_changed(const struct gate_tls *t, const struct config *conf)
{
	int i;

	for (i = 0; i < 3; i++)
		if ((t->pem[i] == NULL) != (conf->tls_pem[i] == NULL) ||
		    (t->pem[i] != NULL &&
		    strcmp(t->pem[i], conf->tls_pem[i]) != 0))
			return 1;
	return 0;
}

/* TLS for a new gate: 0, or -1 with why in err. */
int
gate_tls_load(struct gate_tls *t, const struct config *conf, char *err,
    size_t errlen)
{
	if ((t->ctx = gate_tls_ctx(conf, err, errlen)) == NULL)
		return -1;
	t->mtls = conf->tls_pem[2] != NULL;
	gate_pem_keep(t, conf);
	return 0;
}

/*
 * A new certificate for new connections; a bad one changes nothing.
 * Turning TLS (or client certificates) on or off takes a restart
 * (grpcsvc_reconfigure says so).
 */
void
gate_tls_reload(struct gate_tls *t, const struct config *conf)
{
	SSL_CTX	*ctx;
	char	 err[256];

	if (t->ctx == NULL || conf->tls_pem[0] == NULL ||
	    (conf->tls_pem[2] != NULL) != t->mtls || !gate_pem_changed(t, conf))
		return;
	if ((ctx = gate_tls_ctx(conf, err, sizeof(err))) == NULL) {
		log_warnx("reload: TLS: %s: new connections keep the old "
		    "certificate", err);
		return;
	}
	SSL_CTX_free(t->ctx);
	t->ctx = ctx;
	gate_pem_keep(t, conf);
	log_info("grpc: TLS certificate, key or client CA changed: new "
	    "connections use them");
}

void
gate_tls_free(struct gate_tls *t)
{
	if (t->ctx != NULL)
		SSL_CTX_free(t->ctx);
	t->ctx = NULL;
	gate_pem_free(t);
}
