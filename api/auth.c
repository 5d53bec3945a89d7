/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth: JWT verification and HS256 minting with OpenSSL (see auth.h).
 *
 * The order of the checks is the point: nothing of the payload is read
 * before the signature has been verified with a key of the algorithm the
 * header names, and the algorithm only ever selects among keys of that
 * type. The header is parsed first only to learn alg and kid.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "fsutil.h"
#include "http.h"

#define AUTH_MAX_SECRET 4096
#define AUTH_MAX_PEM (1 << 20)
#define AUTH_RSA_MIN_BITS 2048
#define AUTH_HS256_LEN 32

struct auth_key {
	enum auth_alg alg;
	char kid[64];
	unsigned char *secret; /* HS256 */
	size_t len;
	EVP_PKEY *pkey; /* RS256 */
};

struct auth {
	struct auth_key keys[AUTH_MAX_KEYS];
	size_t nkeys;
	char issuer[256];
	char audience[256];
};

static const char *const auth_role_names[] = {
	[AUTH_ROLE_VIEWER] = "viewer",
	[AUTH_ROLE_OPERATOR] = "operator",
	[AUTH_ROLE_ADMIN] = "admin",
};

const char *auth_role_name(enum auth_role r)
{
	if ((unsigned int)r > AUTH_ROLE_ADMIN)
		return "?";
	return auth_role_names[r];
}

int auth_role_parse(const char *s, enum auth_role *r)
{
	unsigned int i;

	for (i = 0; s && i <= AUTH_ROLE_ADMIN; i++) {
		if (!strcmp(s, auth_role_names[i])) {
			*r = (enum auth_role)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* printf into why when it is given; returns rc so call sites read `return auth_why(...)`. */
static __attribute__((format(printf, 4, 5))) int auth_why(char *why, size_t whylen, int rc,
							  const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* base64url */

static const char auth_b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t auth_b64url_encode(const void *in, size_t len, char *out)
{
	const unsigned char *p = in;
	size_t i, o = 0;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		out[o++] = auth_b64_alphabet[v >> 18];
		out[o++] = auth_b64_alphabet[(v >> 12) & 63];
		out[o++] = auth_b64_alphabet[(v >> 6) & 63];
		out[o++] = auth_b64_alphabet[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;

		out[o++] = auth_b64_alphabet[v >> 18];
		out[o++] = auth_b64_alphabet[(v >> 12) & 63];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

		out[o++] = auth_b64_alphabet[v >> 18];
		out[o++] = auth_b64_alphabet[(v >> 12) & 63];
		out[o++] = auth_b64_alphabet[(v >> 6) & 63];
	}
	out[o] = '\0';
	return o;
}

static int auth_b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int auth_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
	size_t i, o = 0, need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
	uint32_t acc = 0;
	int bits = 0;

	if (len % 4 == 1)
		return -EINVAL;
	if (need > cap)
		return -E2BIG;
	for (i = 0; i < len; i++) {
		int v = auth_b64_value((unsigned char)in[i]);

		if (v < 0)
			return -EINVAL;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* the unused low bits of the last character must be zero (one encoding per value) */
	if (acc)
		return -EINVAL;
	return (int)o;
}

/* Decode part [s, s + n) into a malloc'd, NUL-terminated buffer. Returns its length or -errno. */
static int auth_b64_dup(const char *s, size_t n, unsigned char **out)
{
	unsigned char *buf = malloc(n / 4 * 3 + 3 + 1);
	int len;

	*out = NULL;
	if (!buf)
		return -ENOMEM;
	len = auth_b64url_decode(s, n, buf, n / 4 * 3 + 3);
	if (len < 0) {
		free(buf);
		return len;
	}
	buf[len] = '\0';
	*out = buf;
	return len;
}

/* ------------------------------------------------------------------ */
/* keys */

struct auth *auth__new(void)
{
	return calloc(1, sizeof(struct auth));
}

struct auth *auth__free(struct auth *a)
{
	size_t i;

	if (!a)
		return NULL;
	for (i = 0; i < a->nkeys; i++) {
		if (a->keys[i].secret) {
			OPENSSL_cleanse(a->keys[i].secret, a->keys[i].len);
			free(a->keys[i].secret);
		}
		EVP_PKEY_free(a->keys[i].pkey);
	}
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
	return NULL;
}

size_t auth__nkeys(const struct auth *a)
{
	return a ? a->nkeys : 0;
}

static struct auth_key *auth_key_slot(struct auth *a, const char *kid, int *err)
{
	struct auth_key *k;

	if (a->nkeys == AUTH_MAX_KEYS) {
		*err = -ENOSPC;
		return NULL;
	}
	if (kid && strlen(kid) >= sizeof(k->kid)) {
		*err = -EINVAL;
		return NULL;
	}
	k = &a->keys[a->nkeys];
	memset(k, 0, sizeof(*k));
	snprintf(k->kid, sizeof(k->kid), "%s", kid ? kid : "");
	return k;
}

int auth__add_hs256(struct auth *a, const char *kid, const void *secret, size_t len)
{
	struct auth_key *k;
	int err = 0;

	if (!a || !secret || len < AUTH_MIN_SECRET || len > AUTH_MAX_SECRET)
		return -EINVAL;
	k = auth_key_slot(a, kid, &err);
	if (!k)
		return err;
	k->secret = malloc(len);
	if (!k->secret)
		return -ENOMEM;
	memcpy(k->secret, secret, len);
	k->len = len;
	k->alg = AUTH_ALG_HS256;
	a->nkeys++;
	return 0;
}

/* The public key of one PEM block, or NULL with the reason in err. */
static EVP_PKEY *auth_pem_block_key(const char *name, const unsigned char *data, long len,
				    char *err, size_t errlen)
{
	const unsigned char *p = data;
	EVP_PKEY *pkey = NULL;
	X509 *x;

	if (!strcmp(name, "PUBLIC KEY")) {
		pkey = d2i_PUBKEY(NULL, &p, len);
	} else if (!strcmp(name, "RSA PUBLIC KEY")) {
		pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, len);
	} else if (!strcmp(name, "CERTIFICATE")) {
		x = d2i_X509(NULL, &p, len);
		if (x)
			pkey = X509_get_pubkey(x);
		X509_free(x);
	} else if (strstr(name, "PRIVATE KEY")) {
		auth_why(err, errlen, 0,
			 "holds a private key: give the public key (openssl pkey -pubout)");
		return NULL;
	} else {
		auth_why(err, errlen, 0, "unexpected PEM block \"%.40s\"", name);
		return NULL;
	}
	if (!pkey)
		auth_why(err, errlen, 0, "cannot decode the %s block", name);
	return pkey;
}

int auth__add_rs256_pem(struct auth *a, const char *kid, const char *pem, size_t len, char *err,
			size_t errlen)
{
	BIO *bio = NULL;
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long dlen;
	size_t first;
	int n = 0, rc = 0;

	if (!a || !pem || len > AUTH_MAX_PEM)
		return auth_why(err, errlen, -EINVAL, "no PEM text");
	first = a->nkeys;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return -ENOMEM;
	while (PEM_read_bio(bio, &name, &header, &data, &dlen) == 1) {
		EVP_PKEY *pkey = auth_pem_block_key(name, data, dlen, err, errlen);
		struct auth_key *k;

		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
		name = header = NULL;
		data = NULL;
		if (!pkey) {
			rc = -EINVAL;
			goto cleanup;
		}
		if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
			EVP_PKEY_free(pkey);
			rc = auth_why(err, errlen, -EINVAL, "key %d is not an RSA key", n + 1);
			goto cleanup;
		}
		if (EVP_PKEY_get_bits(pkey) < AUTH_RSA_MIN_BITS) {
			rc = auth_why(err, errlen, -EINVAL,
				      "key %d has %d bits, at least %d needed", n + 1,
				      EVP_PKEY_get_bits(pkey), AUTH_RSA_MIN_BITS);
			EVP_PKEY_free(pkey);
			goto cleanup;
		}
		k = auth_key_slot(a, kid, &rc);
		if (!k) {
			EVP_PKEY_free(pkey);
			auth_why(err, errlen, rc, "too many keys or kid too long");
			goto cleanup;
		}
		k->alg = AUTH_ALG_RS256;
		k->pkey = pkey;
		a->nkeys++;
		n++;
	}
	if (!n)
		rc = auth_why(err, errlen, -EINVAL, "no PEM public key found");
cleanup:
	ERR_clear_error(); /* PEM_read_bio's "no start line" at the end */
	BIO_free(bio);
	if (rc) {
		/* all or nothing */
		while (a->nkeys > first) {
			a->nkeys--;
			EVP_PKEY_free(a->keys[a->nkeys].pkey);
			a->keys[a->nkeys].pkey = NULL;
		}
		return rc;
	}
	return n;
}

/*
 * Read a small file whole into a malloc'd, NUL-terminated buffer. others_ok
 * false refuses a file that others may read or write. Returns the length
 * or -errno with a reason in err.
 */
static int auth_read_file(const char *path, size_t max, bool others_ok, char **out, char *err,
			  size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	ssize_t got;
	size_t n = 0;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return auth_why(err, errlen, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st)) {
		rc = auth_why(err, errlen, -errno, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = auth_why(err, errlen, -EINVAL, "%s: not a regular file", path);
		goto fail;
	}
	if (!others_ok && (st.st_mode & 0007)) {
		rc = auth_why(err, errlen, -EPERM,
			      "%s: others may access this secret (mode %04o): chmod o-rwx it", path,
			      (unsigned int)(st.st_mode & 07777));
		goto fail;
	}
	if ((size_t)st.st_size > max) {
		rc = auth_why(err, errlen, -EFBIG, "%s: larger than %zu bytes", path, max);
		goto fail;
	}
	buf = malloc(max + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto fail;
	}
	while (n < max && (got = read(fd, buf + n, max - n)) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			rc = auth_why(err, errlen, -errno, "%s: %s", path, strerror(errno));
			goto fail;
		}
		n += (size_t)got;
	}
	close(fd);
	buf[n] = '\0';
	*out = buf;
	return (int)n;
fail:
	free(buf);
	close(fd);
	return rc;
}

int auth_read_secret(const char *path, unsigned char **secret, size_t *len, char *err,
		     size_t errlen)
{
	char *buf = NULL;
	bool text = true;
	int n, i, size;

	*secret = NULL;
	*len = 0;
	size = n = auth_read_file(path, AUTH_MAX_SECRET, false, &buf, err, errlen);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)buf[i];

		if ((c < 0x20 || c > 0x7e) && c != '\n' && c != '\r' && c != '\t')
			text = false;
	}
	/* `echo secret > file` must work: drop one trailing newline of a text file */
	if (text && n && buf[n - 1] == '\n')
		n -= n > 1 && buf[n - 2] == '\r' ? 2 : 1;
	if (n < AUTH_MIN_SECRET) {
		OPENSSL_cleanse(buf, (size_t)size);
		free(buf);
		return auth_why(err, errlen, -EINVAL,
				"%s: a secret needs at least %d bytes, it has %d", path,
				AUTH_MIN_SECRET, n);
	}
	*secret = (unsigned char *)buf;
	*len = (size_t)n;
	return 0;
}

int auth__add_hs256_file(struct auth *a, const char *path, char *err, size_t errlen)
{
	unsigned char *secret = NULL;
	size_t len = 0;
	int rc;

	if (!a || !path)
		return -EINVAL;
	rc = auth_read_secret(path, &secret, &len, err, errlen);
	if (rc)
		return rc;
	rc = auth__add_hs256(a, NULL, secret, len);
	if (rc)
		auth_why(err, errlen, rc, "%s: %s", path,
			 rc == -ENOSPC ? "too many keys" : strerror(-rc));
	OPENSSL_cleanse(secret, len);
	free(secret);
	return rc;
}

int auth__add_rs256_file(struct auth *a, const char *path, char *err, size_t errlen)
{
	char *buf = NULL, why[200] = "";
	int n;

	if (!a || !path)
		return -EINVAL;
	n = auth_read_file(path, AUTH_MAX_PEM, true, &buf, err, errlen);
	if (n < 0)
		return n;
	n = auth__add_rs256_pem(a, NULL, buf, (size_t)n, why, sizeof(why));
	if (n < 0)
		auth_why(err, errlen, n, "%s: %s", path, why[0] ? why : strerror(-n));
	free(buf);
	return n;
}

int auth__set_claims(struct auth *a, const char *issuer, const char *audience)
{
	if (!a || (issuer && strlen(issuer) >= sizeof(a->issuer)) ||
	    (audience && strlen(audience) >= sizeof(a->audience)))
		return -EINVAL;
	snprintf(a->issuer, sizeof(a->issuer), "%s", issuer ? issuer : "");
	snprintf(a->audience, sizeof(a->audience), "%s", audience ? audience : "");
	return 0;
}

/* ------------------------------------------------------------------ */
/* verification */

static bool auth_sig_ok(const struct auth_key *k, const char *input, size_t n,
			const unsigned char *sig, size_t siglen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	bool ok;

	if (k->alg == AUTH_ALG_HS256) {
		if (siglen != AUTH_HS256_LEN ||
		    !HMAC(EVP_sha256(), k->secret, (int)k->len, (const unsigned char *)input, n, md,
			  &mdlen) ||
		    mdlen != AUTH_HS256_LEN)
			return false;
		return CRYPTO_memcmp(md, sig, AUTH_HS256_LEN) == 0;
	}
	if (siglen != (size_t)EVP_PKEY_get_size(k->pkey))
		return false;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return false;
	ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
	     EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)input, n) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

/* A claim string: printable, shorter than size; copies it to out. */
static bool auth_claim_str(const json_t *v, char *out, size_t size)
{
	const char *s;
	size_t i, n;

	if (!json_is_string(v))
		return false;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n >= size)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	memcpy(out, s, n + 1);
	return true;
}

static bool auth_aud_ok(const json_t *aud, const char *want)
{
	const json_t *v;
	size_t i;

	if (json_is_string(aud))
		return !strcmp(json_string_value(aud), want);
	if (!json_is_array(aud))
		return false;
	for (i = 0; i < json_array_size(aud); i++) {
		v = json_array_get(aud, i);
		if (json_is_string(v) && !strcmp(json_string_value(v), want))
			return true;
	}
	return false;
}

/* A NumericDate claim (RFC 7519 2): a finite JSON number. */
static bool auth_claim_time(const json_t *v, double *out)
{
	if (!json_is_number(v))
		return false;
	*out = json_number_value(v);
	return isfinite(*out);
}

static int auth_check_claims(const struct auth *a, const json_t *c, int64_t now_s,
			     struct auth_principal *out, char *why, size_t whylen)
{
	const json_t *v;
	char role[16];
	double t;

	memset(out, 0, sizeof(*out));
	v = json_object_get(c, "exp");
	if (!v)
		return auth_why(why, whylen, -EINVAL, "the token has no exp claim");
	if (!auth_claim_time(v, &t))
		return auth_why(why, whylen, -EINVAL, "exp is not a number");
	if ((double)now_s > t + AUTH_LEEWAY_S)
		return auth_why(why, whylen, -EKEYEXPIRED, "the token has expired");
	v = json_object_get(c, "nbf");
	if (v) {
		if (!auth_claim_time(v, &t))
			return auth_why(why, whylen, -EINVAL, "nbf is not a number");
		if ((double)now_s + AUTH_LEEWAY_S < t)
			return auth_why(why, whylen, -EKEYEXPIRED, "the token is not valid yet");
	}
	if (a->issuer[0]) {
		v = json_object_get(c, "iss");
		if (!json_is_string(v) || strcmp(json_string_value(v), a->issuer))
			return auth_why(why, whylen, -EACCES, "wrong or missing issuer (iss)");
	}
	if (a->audience[0] && !auth_aud_ok(json_object_get(c, "aud"), a->audience))
		return auth_why(why, whylen, -EACCES, "wrong or missing audience (aud)");
	if (!auth_claim_str(json_object_get(c, "sub"), out->subject, sizeof(out->subject)) ||
	    !out->subject[0])
		return auth_why(why, whylen, -EACCES, "missing or bad subject (sub)");
	if (!auth_claim_str(json_object_get(c, "role"), role, sizeof(role)) ||
	    auth_role_parse(role, &out->role))
		return auth_why(why, whylen, -EACCES,
				"missing or unknown role (admin, operator or viewer)");
	v = json_object_get(c, "tenant");
	if (v && !json_is_null(v) && !auth_claim_str(v, out->tenant, sizeof(out->tenant)))
		return auth_why(why, whylen, -EINVAL, "bad tenant claim");
	if (out->role == AUTH_ROLE_ADMIN)
		out->tenant[0] = '\0'; /* admins see every tenant */
	return 0;
}

/* The parsed header: alg and kid, or -errno. */
static int auth_parse_header(const char *b64, size_t n, enum auth_alg *alg, char *kid,
			     size_t kidlen, char *why, size_t whylen)
{
	unsigned char *raw = NULL;
	json_t *h = NULL;
	const json_t *v;
	const char *name;
	int len, rc = 0;

	len = auth_b64_dup(b64, n, &raw);
	if (len < 0)
		return auth_why(why, whylen, len == -ENOMEM ? len : -EINVAL,
				"the header is not base64url");
	h = json_loadb((const char *)raw, (size_t)len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(h)) {
		rc = auth_why(why, whylen, -EINVAL, "the header is not a JSON object");
		goto out;
	}
	v = json_object_get(h, "alg");
	if (!json_is_string(v)) {
		rc = auth_why(why, whylen, -EINVAL, "the header has no alg");
		goto out;
	}
	name = json_string_value(v);
	if (!strcmp(name, "HS256")) {
		*alg = AUTH_ALG_HS256;
	} else if (!strcmp(name, "RS256")) {
		*alg = AUTH_ALG_RS256;
	} else if (!strcasecmp(name, "none")) {
		rc = auth_why(why, whylen, -EKEYREJECTED, "unsigned tokens (alg none) are refused");
		goto out;
	} else {
		rc = auth_why(why, whylen, -EKEYREJECTED, "unsupported alg (HS256 or RS256)");
		goto out;
	}
	if (json_object_get(h, "crit")) {
		rc = auth_why(why, whylen, -EKEYREJECTED, "critical header extensions are refused");
		goto out;
	}
	kid[0] = '\0';
	v = json_object_get(h, "kid");
	if (v && !auth_claim_str(v, kid, kidlen))
		rc = auth_why(why, whylen, -EINVAL, "bad kid");
out:
	json_decref(h);
	free(raw);
	return rc;
}

int auth__verify(const struct auth *a, const char *token, size_t len, int64_t now_s,
		 struct auth_principal *out, char *why, size_t whylen)
{
	const char *dot1, *dot2;
	unsigned char *sig = NULL, *payload = NULL;
	json_t *claims = NULL;
	enum auth_alg alg = AUTH_ALG_HS256;
	char kid[64];
	size_t i;
	bool kid_known = false, tried = false, ok = false;
	int siglen, plen, rc;

	if (!a || !token || !out)
		return -EINVAL;
	if (!len)
		return auth_why(why, whylen, -EINVAL, "empty token");
	if (len > AUTH_MAX_TOKEN)
		return auth_why(why, whylen, -EINVAL, "the token is longer than %d bytes",
				AUTH_MAX_TOKEN);
	dot1 = memchr(token, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
	if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) || dot1 == token ||
	    dot2 == dot1 + 1 || dot2 + 1 == token + len)
		return auth_why(why, whylen, -EINVAL,
				"not a signed JWT (three non-empty dot-separated parts)");

	rc = auth_parse_header(token, (size_t)(dot1 - token), &alg, kid, sizeof(kid), why, whylen);
	if (rc)
		return rc;
	siglen = auth_b64_dup(dot2 + 1, len - (size_t)(dot2 + 1 - token), &sig);
	if (siglen < 0) {
		rc = auth_why(why, whylen, siglen == -ENOMEM ? siglen : -EINVAL,
			      "the signature is not base64url");
		goto out;
	}

	/* a kid names one key; without a match, keys without a kid are candidates */
	for (i = 0; kid[0] && i < a->nkeys; i++)
		if (a->keys[i].alg == alg && !strcmp(a->keys[i].kid, kid))
			kid_known = true;
	for (i = 0; i < a->nkeys && !ok; i++) {
		const struct auth_key *k = &a->keys[i];

		if (k->alg != alg || (kid_known ? strcmp(k->kid, kid) : k->kid[0] != '\0'))
			continue;
		tried = true;
		ok = auth_sig_ok(k, token, (size_t)(dot2 - token), sig, (size_t)siglen);
	}
	if (!tried) {
		rc = auth_why(why, whylen, -EKEYREJECTED, "no %s key%s is configured",
			      alg == AUTH_ALG_HS256 ? "HS256" : "RS256",
			      kid[0] ? " with that kid" : "");
		goto out;
	}
	if (!ok) {
		rc = auth_why(why, whylen, -EKEYREJECTED, "bad signature");
		goto out;
	}

	plen = auth_b64_dup(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload);
	if (plen < 0) {
		rc = auth_why(why, whylen, plen == -ENOMEM ? plen : -EINVAL,
			      "the payload is not base64url");
		goto out;
	}
	claims = json_loadb((const char *)payload, (size_t)plen, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(claims)) {
		rc = auth_why(why, whylen, -EINVAL, "the payload is not a JSON object");
		goto out;
	}
	rc = auth_check_claims(a, claims, now_s, out, why, whylen);
out:
	json_decref(claims);
	free(payload);
	free(sig);
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

int auth__check_header(const struct auth *a, const char *authorization, struct auth_principal *out,
		       char *why, size_t whylen)
{
	const char *p = authorization, *end;

	if (!p)
		p = "";
	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p)
		return auth_why(why, whylen, -ENOENT, "no bearer token");
	if (strncasecmp(p, "Bearer", 6) || (p[6] != ' ' && p[6] != '\t'))
		return auth_why(why, whylen, -EINVAL, "the Authorization header is not Bearer");
	p += 6;
	while (*p == ' ' || *p == '\t')
		p++;
	end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return auth__verify(a, p, (size_t)(end - p), (int64_t)time(NULL), out, why, whylen);
}

int auth__check_request(const struct auth *a, const char *authorization, const char *query,
			struct auth_principal *out, char *why, size_t whylen)
{
	char *tok;
	int n, rc;

	if ((authorization && authorization[0]) || !query || !query[0])
		return auth__check_header(a, authorization, out, why, whylen);
	tok = malloc(AUTH_MAX_TOKEN + 1);
	if (!tok)
		return -ENOMEM;
	n = http_param(query, "access_token", 0, tok, AUTH_MAX_TOKEN + 1);
	if (n == -ENOENT)
		rc = auth_why(why, whylen, -ENOENT, "no bearer token");
	else if (n < 0)
		rc = auth_why(why, whylen, -EINVAL, "bad access_token parameter");
	else
		rc = auth__verify(a, tok, (size_t)n, (int64_t)time(NULL), out, why, whylen);
	free(tok);
	return rc;
}

int auth__http_authenticate(void *ctx, const struct http_request *req, struct auth_principal *out,
			    char *why, size_t whylen)
{
	return auth__check_request(ctx, req->authorization, req->query, out, why, whylen);
}

/* ------------------------------------------------------------------ */
/* minting */

/* Base64url of a JSON value's compact text, appended at *w; returns 0 or -ENOMEM. */
static int auth_b64_json(json_t *v, char *out, size_t cap, size_t *w)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
	size_t n;

	if (!s)
		return -ENOMEM;
	n = strlen(s);
	if (*w + (n + 2) / 3 * 4 + 1 > cap) {
		free(s);
		return -E2BIG;
	}
	*w += auth_b64url_encode(s, n, out + *w);
	free(s);
	return 0;
}

int auth__mint_hs256(const void *secret, size_t len, const struct auth_mint *m, char **token)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	json_t *h = NULL, *c = NULL;
	char *out = NULL;
	size_t w = 0, cap = AUTH_MAX_TOKEN + 1;
	int rc = -ENOMEM;

	*token = NULL;
	if (!secret || len < AUTH_MIN_SECRET || !m || !m->subject || !m->subject[0] ||
	    strlen(m->subject) >= sizeof(((struct auth_principal *)0)->subject) ||
	    (m->tenant && strlen(m->tenant) >= sizeof(((struct auth_principal *)0)->tenant)) ||
	    (unsigned int)m->role > AUTH_ROLE_ADMIN || m->exp <= 0)
		return -EINVAL;
	h = json_pack("{s:s, s:s}", "alg", "HS256", "typ", "JWT");
	c = json_pack("{s:s, s:s, s:I, s:I}", "sub", m->subject, "role", auth_role_name(m->role),
		      "iat", (json_int_t)m->iat, "exp", (json_int_t)m->exp);
	out = malloc(cap);
	if (!h || !c || !out)
		goto out;
	if ((m->kid && m->kid[0] && json_object_set_new(h, "kid", json_string(m->kid))) ||
	    (m->tenant && m->tenant[0] &&
	     json_object_set_new(c, "tenant", json_string(m->tenant))) ||
	    (m->issuer && m->issuer[0] && json_object_set_new(c, "iss", json_string(m->issuer))) ||
	    (m->audience && m->audience[0] &&
	     json_object_set_new(c, "aud", json_string(m->audience))) ||
	    (m->nbf && json_object_set_new(c, "nbf", json_integer((json_int_t)m->nbf))))
		goto out;
	rc = auth_b64_json(h, out, cap, &w);
	if (rc)
		goto out;
	out[w++] = '.';
	rc = auth_b64_json(c, out, cap, &w);
	if (rc)
		goto out;
	if (!HMAC(EVP_sha256(), secret, (int)len, (const unsigned char *)out, w, md, &mdlen) ||
	    w + 1 + 44 > cap) {
		rc = -EINVAL;
		goto out;
	}
	out[w++] = '.';
	auth_b64url_encode(md, mdlen, out + w);
	*token = out;
	out = NULL;
	rc = 0;
out:
	json_decref(h);
	json_decref(c);
	free(out);
	return rc;
}

/* ------------------------------------------------------------------ */
/* set-up */

bool auth_listen_is_loopback(const char *listen)
{
	struct addrinfo hints = { 0 }, *res = NULL, *ai;
	struct in6_addr a6;
	struct in_addr a4;
	char host[256];
	bool all = true;
	int port;

	if (!listen || http_parse_listen(listen, host, sizeof(host), &port) || !host[0])
		return false;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	/* a name: loopback only when every address it has is */
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &res) || !res)
		return false;
	for (ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET) {
			const struct sockaddr_in *s = (const void *)ai->ai_addr;

			all = all && (ntohl(s->sin_addr.s_addr) >> 24) == 127;
		} else if (ai->ai_family == AF_INET6) {
			const struct sockaddr_in6 *s = (const void *)ai->ai_addr;

			all = all && IN6_IS_ADDR_LOOPBACK(&s->sin6_addr);
		} else {
			all = false;
		}
	}
	freeaddrinfo(res);
	return all;
}

/*
 * Create the auto-mode secret at path unless it exists. Returns 1 when made
 * now, 0 when it existed, or -errno with err.
 */
static int auth_make_secret(const char *dir, const char *path, char *err, size_t errlen)
{
	unsigned char key[AUTH_MIN_SECRET];
	size_t off = 0;
	ssize_t n;
	int fd, rc = 0;

	rc = fsutil_mkdirs(dir, 0700);
	if (rc)
		return auth_why(err, errlen, rc, "%s: %s", dir, strerror(-rc));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST)
		return 0;
	if (fd < 0)
		return auth_why(err, errlen, -errno, "%s: %s", path, strerror(errno));
	if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) {
		rc = auth_why(err, errlen, -EIO, "getrandom: %s", strerror(errno));
		goto fail;
	}
	while (off < sizeof(key)) {
		n = write(fd, key + off, sizeof(key) - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = auth_why(err, errlen, -EIO, "%s: %s", path, strerror(errno));
			goto fail;
		}
		off += (size_t)n;
	}
	if (fsync(fd)) {
		rc = auth_why(err, errlen, -errno, "%s: %s", path, strerror(errno));
		goto fail;
	}
	close(fd);
	OPENSSL_cleanse(key, sizeof(key));
	return 1;
fail:
	OPENSSL_cleanse(key, sizeof(key));
	close(fd);
	unlink(path);
	return rc;
}

int auth__setup(const struct auth_setup *s, struct auth **out, struct auth_setup_result *res,
		char *err, size_t errlen)
{
	bool have_hs, have_rs;
	struct auth *a = NULL;
	char dir[512];
	int rc;

	if (!s || !out || !res)
		return -EINVAL;
	*out = NULL;
	memset(res, 0, sizeof(*res));
	have_hs = s->hs256_secret_file && s->hs256_secret_file[0];
	have_rs = s->rs256_public_key_file && s->rs256_public_key_file[0];
	res->loopback = auth_listen_is_loopback(s->listen);
	switch (s->mode) {
	case AUTH_MODE_OFF:
		return 0;
	case AUTH_MODE_ON:
		if (!have_hs && !have_rs)
			return auth_why(
				err, errlen, -ENOKEY,
				"auth.mode is on but no key is configured (auth.hs256_secret_file or auth.rs256_public_key_file)");
		break;
	default:
		if (!have_hs && !have_rs && res->loopback)
			return 0;
		break;
	}
	res->enforce = true;
	a = auth__new();
	if (!a)
		return -ENOMEM;
	rc = auth__set_claims(a, s->issuer, s->audience);
	if (rc) {
		auth_why(err, errlen, rc, "auth.issuer or auth.audience is too long");
		goto fail;
	}
	if (have_hs && (rc = auth__add_hs256_file(a, s->hs256_secret_file, err, errlen)) < 0)
		goto fail;
	if (have_rs && (rc = auth__add_rs256_file(a, s->rs256_public_key_file, err, errlen)) < 0)
		goto fail;
	if (!have_hs && !have_rs) {
		/* auto mode on a reachable address: never serve open, never a default password */
		if (!s->state_dir || !s->state_dir[0]) {
			rc = auth_why(err, errlen, -EINVAL, "no state directory for the secret");
			goto fail;
		}
		snprintf(dir, sizeof(dir), "%s/auth", s->state_dir);
		if (snprintf(res->secret_file, sizeof(res->secret_file), "%s/%s", s->state_dir,
			     AUTH_GENERATED_SECRET) >= (int)sizeof(res->secret_file)) {
			rc = auth_why(err, errlen, -ENAMETOOLONG, "state_dir is too long");
			goto fail;
		}
		rc = auth_make_secret(dir, res->secret_file, err, errlen);
		if (rc < 0)
			goto fail;
		res->generated = rc == 1;
		rc = auth__add_hs256_file(a, res->secret_file, err, errlen);
		if (rc < 0)
			goto fail;
	}
	*out = a;
	return 0;
fail:
	auth__free(a);
	res->enforce = false;
	return rc;
}
