/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for api/auth.c: base64url, HS256 and RS256 tokens that verify,
 * and every way a token must not: expired, not yet valid, a bad signature,
 * alg none, alg confusion (the RS256 public key used as an HS256 secret),
 * malformed base64/JSON, missing or unknown claims; kid selection, iss/aud,
 * the Authorization header and access_token forms, key files, the auth:
 * set-up (modes, loopback, the generated secret) and configuration section;
 * and a real HTTP server with the authenticator: 401 with its challenge,
 * public paths, the principal in handlers, 403 by role, the audit hook.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "http.h"
#include "metrics.h"

#define TA_NOW 1800000000LL

static const char ta_secret[] = "0123456789abcdef0123456789abcdef-test";

/* header.payload.signature from JSON texts, HS256-signed with secret. */
static char *ta_token_hs(const char *header, const char *payload, const void *secret, size_t len)
{
	char *t = malloc(16384);
	unsigned char md[32];
	unsigned int mdlen = 0;
	size_t w;

	cr_assert_not_null(t);
	w = auth_b64url_encode(header, strlen(header), t);
	t[w++] = '.';
	w += auth_b64url_encode(payload, strlen(payload), t + w);
	cr_assert_not_null(HMAC(EVP_sha256(), secret, (int)len, (unsigned char *)t, w, md, &mdlen));
	t[w++] = '.';
	auth_b64url_encode(md, mdlen, t + w);
	return t;
}

static char *ta_token_rs(const char *header, const char *payload, EVP_PKEY *key)
{
	char *t = malloc(16384);
	unsigned char sig[1024];
	size_t w, siglen = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	cr_assert(t && ctx);
	w = auth_b64url_encode(header, strlen(header), t);
	t[w++] = '.';
	w += auth_b64url_encode(payload, strlen(payload), t + w);
	cr_assert_eq(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
	cr_assert_eq(EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)t, w), 1);
	EVP_MD_CTX_free(ctx);
	t[w++] = '.';
	auth_b64url_encode(sig, siglen, t + w);
	return t;
}

/* A payload with exp/nbf relative to TA_NOW and extra members (may be ""). */
static const char *ta_claims(char *buf, size_t len, long long exp_off, const char *extra)
{
	snprintf(buf, len, "{\"sub\":\"alice\",\"role\":\"operator\",\"exp\":%lld%s%s}",
		 TA_NOW + exp_off, extra[0] ? "," : "", extra);
	return buf;
}

static const char ta_hs_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
static const char ta_rs_header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";

static struct auth *ta_hs_auth(void)
{
	struct auth *a = auth__new();

	cr_assert_not_null(a);
	cr_assert_eq(auth__add_hs256(a, NULL, ta_secret, strlen(ta_secret)), 0);
	return a;
}

/* Verify tok at TA_NOW; returns the result, principal in *p. */
static int ta_verify(const struct auth *a, const char *tok, struct auth_principal *p, char *why,
		     size_t whylen)
{
	return auth__verify(a, tok, strlen(tok), TA_NOW, p, why, whylen);
}

Test(auth, base64url)
{
	static const char *const bad[] = { "a", "ab=c", "ab==", "a+bc", "a/bc", "ab c", "AB" };
	unsigned char out[64];
	char enc[64];
	size_t n;
	int i;

	n = auth_b64url_encode("\xfb\xff\x00?", 4, enc);
	cr_assert_str_eq(enc, "-_8APw");
	cr_assert_eq(n, 6);
	cr_assert_eq(auth_b64url_decode(enc, n, out, sizeof(out)), 4);
	cr_assert_eq(memcmp(out, "\xfb\xff\x00?", 4), 0);
	cr_assert_eq(auth_b64url_decode("", 0, out, sizeof(out)), 0);
	cr_assert_eq(auth_b64url_decode("YWJj", 4, out, sizeof(out)), 3);
	cr_assert_eq(auth_b64url_decode("YWJj", 4, out, 2), -E2BIG);
	/* "AB" leaves non-zero bits after the one byte it holds: a second spelling of "AA" */
	for (i = 0; i < (int)(sizeof(bad) / sizeof(bad[0])); i++)
		cr_expect_eq(auth_b64url_decode(bad[i], strlen(bad[i]), out, sizeof(out)), -EINVAL,
			     "%s", bad[i]);
	cr_assert_eq(auth_b64url_decode("AA", 2, out, sizeof(out)), 1);
}

Test(auth, roles)
{
	enum auth_role r;

	cr_assert(AUTH_ROLE_VIEWER < AUTH_ROLE_OPERATOR && AUTH_ROLE_OPERATOR < AUTH_ROLE_ADMIN);
	cr_assert_eq(auth_role_parse("admin", &r), 0);
	cr_assert_eq(r, AUTH_ROLE_ADMIN);
	cr_assert_eq(auth_role_parse("viewer", &r), 0);
	cr_assert_eq(r, AUTH_ROLE_VIEWER);
	cr_assert_eq(auth_role_parse("Admin", &r), -EINVAL);
	cr_assert_eq(auth_role_parse("root", &r), -EINVAL);
	cr_assert_eq(auth_role_parse("", &r), -EINVAL);
	cr_assert_str_eq(auth_role_name(AUTH_ROLE_OPERATOR), "operator");
}

Test(auth, hs256_valid_and_minted)
{
	struct auth *a = ta_hs_auth();
	struct auth_principal p;
	struct auth_mint m = {
		.subject = "bob",
		.role = AUTH_ROLE_VIEWER,
		.tenant = "acme",
		.iat = TA_NOW,
		.exp = TA_NOW + 60,
	};
	char c[512], why[200], *tok;

	tok = ta_token_hs(ta_hs_header, ta_claims(c, sizeof(c), 3600, "\"tenant\":\"A\""),
			  ta_secret, strlen(ta_secret));
	cr_assert_eq(ta_verify(a, tok, &p, why, sizeof(why)), 0, "%s", why);
	cr_assert_str_eq(p.subject, "alice");
	cr_assert_eq(p.role, AUTH_ROLE_OPERATOR);
	cr_assert_str_eq(p.tenant, "A");
	free(tok);

	cr_assert_eq(auth__mint_hs256(ta_secret, strlen(ta_secret), &m, &tok), 0);
	cr_assert_eq(ta_verify(a, tok, &p, why, sizeof(why)), 0, "%s", why);
	cr_assert_str_eq(p.subject, "bob");
	cr_assert_eq(p.role, AUTH_ROLE_VIEWER);
	cr_assert_str_eq(p.tenant, "acme");
	free(tok);
	/* too short a secret, an admin tenant are refused or cleared */
	cr_assert_eq(auth__mint_hs256("short", 5, &m, &tok), -EINVAL);
	m.role = AUTH_ROLE_ADMIN;
	cr_assert_eq(auth__mint_hs256(ta_secret, strlen(ta_secret), &m, &tok), 0);
	cr_assert_eq(ta_verify(a, tok, &p, why, sizeof(why)), 0, "%s", why);
	cr_assert_str_eq(p.tenant, "", "admins see every tenant");
	free(tok);
	auth__free(a);
}

static EVP_PKEY *ta_rsa(int bits)
{
	EVP_PKEY *k = EVP_RSA_gen((unsigned int)bits);

	cr_assert_not_null(k);
	return k;
}

/* The PEM text of k's public half (malloc'd). */
static char *ta_pub_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	cr_assert_not_null(b);
	cr_assert_eq(PEM_write_bio_PUBKEY(b, k), 1);
	n = BIO_get_mem_data(b, &data);
	out = strndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

Test(auth, rs256_valid_and_alg_confusion)
{
	EVP_PKEY *key = ta_rsa(2048), *other = ta_rsa(2048);
	char *pem = ta_pub_pem(key), c[512], why[200], *tok;
	struct auth *a = auth__new();
	struct auth_principal p;

	cr_assert_eq(auth__add_rs256_pem(a, NULL, pem, strlen(pem), why, sizeof(why)), 1, "%s",
		     why);
	tok = ta_token_rs(ta_rs_header, ta_claims(c, sizeof(c), 3600, ""), key);
	cr_assert_eq(ta_verify(a, tok, &p, why, sizeof(why)), 0, "%s", why);
	cr_assert_str_eq(p.subject, "alice");
	free(tok);

	/* signed by another key */
	tok = ta_token_rs(ta_rs_header, ta_claims(c, sizeof(c), 3600, ""), other);
	cr_assert_eq(ta_verify(a, tok, &p, why, sizeof(why)), -EKEYREJECTED);
	free(tok);

	/* alg confusion: HS256 "signed" with the public key's PEM text as the secret */
	tok = ta_token_hs(ta_hs_header, ta_claims(c, sizeof(c), 3600, "\"role\":\"admin\""), pem,
			  strlen(pem));
	cr_assert_eq(ta_verify(a, tok, &p, why, sizeof(why)), -EKEYREJECTED);
	cr_assert(strstr(why, "no HS256 key"), "%s", why);
	/* also when an HS256 key exists: the PEM is never an HMAC secret */
	cr_assert_eq(auth__add_hs256(a, NULL, ta_secret, strlen(ta_secret)), 0);
	cr_assert_eq(ta_verify(a, tok, &p, why, sizeof(why)), -EKEYREJECTED);
	cr_assert_str_eq(why, "bad signature");
	free(tok);
	/* and an RS256 token is not checked against the HMAC secret */
	tok = ta_token_hs(ta_rs_header, ta_claims(c, sizeof(c), 3600, ""), ta_secret,
			  strlen(ta_secret));
	cr_assert_eq(ta_verify(a, tok, &p, why, sizeof(why)), -EKEYREJECTED);
	free(tok);

	free(pem);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	auth__free(a);
}

Test(auth, rs256_key_files_checked)
{
	EVP_PKEY *small = ta_rsa(1024), *key = ta_rsa(2048);
	struct auth *a = auth__new();
	char *pem = ta_pub_pem(small), *two, why[200];
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n;

	cr_assert_eq(auth__add_rs256_pem(a, NULL, pem, strlen(pem), why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "1024 bits"), "%s", why);
	free(pem);
	/* a private key is refused: the daemon holds only public keys */
	cr_assert_eq(PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(b, &data);
	cr_assert_eq(auth__add_rs256_pem(a, NULL, data, (size_t)n, why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "private key"), "%s", why);
	BIO_free(b);
	cr_assert_eq(auth__add_rs256_pem(a, NULL, "junk", 4, why, sizeof(why)), -EINVAL);
	/* two keys in one file (rotation) */
	pem = ta_pub_pem(key);
	cr_assert(asprintf(&two, "%s%s", pem, pem) > 0);
	cr_assert_eq(auth__add_rs256_pem(a, NULL, two, strlen(two), why, sizeof(why)), 2);
	cr_assert_eq(auth__nkeys(a), 2);
	free(two);
	free(pem);
	EVP_PKEY_free(small);
	EVP_PKEY_free(key);
	auth__free(a);
}

Test(auth, expiry_and_not_before)
{
	struct auth *a = ta_hs_auth();
	struct auth_principal p;
	char c[512], why[200], *tok;
	static const struct {
		long long exp;
		const char *extra;
		int want;
	} cases[] = {
		{ -3600, "", -EKEYEXPIRED },
		{ -(AUTH_LEEWAY_S + 1), "", -EKEYEXPIRED },
		{ -(AUTH_LEEWAY_S - 5), "", 0 }, /* within the leeway */
		{ 3600, "\"nbf\":1800003600", -EKEYEXPIRED },
		{ 3600, "\"nbf\":1800000030", 0 },
		{ 3600, "\"nbf\":\"soon\"", -EINVAL },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tok = ta_token_hs(ta_hs_header,
				  ta_claims(c, sizeof(c), cases[i].exp, cases[i].extra), ta_secret,
				  strlen(ta_secret));
		cr_expect_eq(ta_verify(a, tok, &p, why, sizeof(why)), cases[i].want, "case %zu: %s",
			     i, why);
		free(tok);
	}
	/* no exp at all */
	tok = ta_token_hs(ta_hs_header, "{\"sub\":\"a\",\"role\":\"viewer\"}", ta_secret,
			  strlen(ta_secret));
	cr_expect_eq(ta_verify(a, tok, &p, why, sizeof(why)), -EINVAL);
	free(tok);
	auth__free(a);
}

Test(auth, bad_signatures_and_alg_none)
{
	struct auth *a = ta_hs_auth();
	struct auth_principal p;
	char c[512], why[200], *tok, *t2, *s;
	static const char other[] = "another-secret-of-at-least-32-bytes!!";

	tok = ta_token_hs(ta_hs_header, ta_claims(c, sizeof(c), 3600, ""), ta_secret,
			  strlen(ta_secret));
	/* change one character of the signature */
	s = strrchr(tok, '.') + 5;
	*s = *s == 'A' ? 'B' : 'A';
	cr_expect_eq(ta_verify(a, tok, &p, why, sizeof(why)), -EKEYREJECTED);
	free(tok);
	/* another secret */
	tok = ta_token_hs(ta_hs_header, ta_claims(c, sizeof(c), 3600, ""), other, strlen(other));
	cr_expect_eq(ta_verify(a, tok, &p, why, sizeof(why)), -EKEYREJECTED);
	cr_expect_str_eq(why, "bad signature");
	free(tok);
	/* an admin payload under the signature of a viewer's token */
	tok = ta_token_hs(ta_hs_header, ta_claims(c, sizeof(c), 3600, ""), ta_secret,
			  strlen(ta_secret));
	t2 = ta_token_hs(ta_hs_header, "{\"sub\":\"eve\",\"role\":\"admin\",\"exp\":1900000000}",
			 ta_secret, strlen(ta_secret));
	s = malloc(strlen(tok) + strlen(t2) + 1);
	cr_assert_not_null(s);
	memcpy(s, t2, (size_t)(strrchr(t2, '.') - t2));
	strcpy(s + (strrchr(t2, '.') - t2), strrchr(tok, '.'));
	cr_expect_eq(ta_verify(a, t2, &p, why, sizeof(why)), 0, "%s", why);
	cr_expect_eq(ta_verify(a, s, &p, why, sizeof(why)), -EKEYREJECTED);
	free(s);
	free(t2);
	free(tok);

	/* alg none, with no signature and with one */
	tok = ta_token_hs("{\"alg\":\"none\"}", ta_claims(c, sizeof(c), 3600, ""), ta_secret,
			  strlen(ta_secret));
	cr_expect_eq(ta_verify(a, tok, &p, why, sizeof(why)), -EKEYREJECTED);
	cr_expect(strstr(why, "alg none"), "%s", why);
	*(strrchr(tok, '.') + 1) = '\0';
	cr_expect_eq(ta_verify(a, tok, &p, why, sizeof(why)), -EINVAL);
	free(tok);
	tok = ta_token_hs("{\"alg\":\"NONE\"}", ta_claims(c, sizeof(c), 3600, ""), ta_secret,
			  strlen(ta_secret));
	cr_expect_eq(ta_verify(a, tok, &p, why, sizeof(why)), -EKEYREJECTED);
	free(tok);
	/* other algorithms and critical extensions */
	tok = ta_token_hs("{\"alg\":\"HS512\"}", ta_claims(c, sizeof(c), 3600, ""), ta_secret,
			  strlen(ta_secret));
	cr_expect_eq(ta_verify(a, tok, &p, why, sizeof(why)), -EKEYREJECTED);
	free(tok);
	tok = ta_token_hs("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
			  ta_claims(c, sizeof(c), 3600, ""), ta_secret, strlen(ta_secret));
	cr_expect_eq(ta_verify(a, tok, &p, why, sizeof(why)), -EKEYREJECTED);
	free(tok);
	auth__free(a);
}

Test(auth, malformed_tokens)
{
	static const char *const shapes[] = {
		"", "abc", "a.b", "a.b.c.d", ".b.c", "a..c", "a.b.", "!!.b.c", "e30.e30.AA=",
	};
	struct auth *a = ta_hs_auth();
	struct auth_principal p;
	char why[200], *tok, *big;
	size_t i;
	static const struct {
		const char *header, *payload;
	} bad_json[] = {
		{ "not json", "{}" },
		{ "[\"HS256\"]", "{}" },
		{ "{\"alg\":5}", "{}" },
		{ "{\"alg\":\"HS256\",\"alg\":\"none\"}", "{}" }, /* duplicate keys */
		{ ta_hs_header, "not json" },
		{ ta_hs_header, "[1,2]" },
		{ ta_hs_header,
		  "{\"sub\":\"a\",\"role\":\"viewer\",\"exp\":1900000000,\"exp\":1}" },
		{ ta_hs_header, "{\"sub\":\"a\",\"role\":\"viewer\",\"exp\":\"1900000000\"}" },
		{ ta_hs_header,
		  "{\"sub\":\"a\",\"role\":\"viewer\",\"exp\":1900000000,\"tenant\":7}" },
	};

	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
		cr_expect_eq(ta_verify(a, shapes[i], &p, why, sizeof(why)), -EINVAL, "%s: %s",
			     shapes[i], why);
	for (i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++) {
		tok = ta_token_hs(bad_json[i].header, bad_json[i].payload, ta_secret,
				  strlen(ta_secret));
		cr_expect_lt(ta_verify(a, tok, &p, why, sizeof(why)), 0, "case %zu", i);
		cr_expect_neq(ta_verify(a, tok, &p, why, sizeof(why)), -EKEYEXPIRED);
		free(tok);
	}
	big = malloc(AUTH_MAX_TOKEN + 16);
	memset(big, 'A', AUTH_MAX_TOKEN + 8);
	big[10] = big[20] = '.';
	big[AUTH_MAX_TOKEN + 8] = '\0';
	cr_expect_eq(ta_verify(a, big, &p, why, sizeof(why)), -EINVAL);
	cr_expect(strstr(why, "longer"), "%s", why);
	free(big);
	auth__free(a);
}

Test(auth, claims_required)
{
	struct auth *a = ta_hs_auth();
	struct auth_principal p;
	char why[200], *tok;
	static const struct {
		const char *payload;
		int want;
	} cases[] = {
		{ "{\"sub\":\"a\",\"exp\":1900000000}", -EACCES }, /* no role */
		{ "{\"sub\":\"a\",\"role\":\"root\",\"exp\":1900000000}", -EACCES },
		{ "{\"sub\":\"a\",\"role\":[\"admin\"],\"exp\":1900000000}", -EACCES },
		{ "{\"role\":\"admin\",\"exp\":1900000000}", -EACCES }, /* no subject */
		{ "{\"sub\":\"\",\"role\":\"admin\",\"exp\":1900000000}", -EACCES },
		{ "{\"sub\":\"a\\nb\",\"role\":\"admin\",\"exp\":1900000000}", -EACCES },
		{ "{\"sub\":\"a\",\"role\":\"viewer\",\"exp\":1900000000,\"tenant\":null}", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tok = ta_token_hs(ta_hs_header, cases[i].payload, ta_secret, strlen(ta_secret));
		cr_expect_eq(ta_verify(a, tok, &p, why, sizeof(why)), cases[i].want, "%s: %s",
			     cases[i].payload, why);
		free(tok);
	}
	auth__free(a);
}

Test(auth, issuer_audience_and_kid)
{
	struct auth *a = auth__new();
	struct auth_principal p;
	char c[512], why[200], *tok;
	static const char k1[] = "key-one-key-one-key-one-key-one-1";
	static const char k2[] = "key-two-key-two-key-two-key-two-2";

	cr_assert_eq(auth__add_hs256(a, "k1", k1, strlen(k1)), 0);
	cr_assert_eq(auth__add_hs256(a, "k2", k2, strlen(k2)), 0);
	tok = ta_token_hs("{\"alg\":\"HS256\",\"kid\":\"k2\"}", ta_claims(c, sizeof(c), 60, ""), k2,
			  strlen(k2));
	cr_expect_eq(ta_verify(a, tok, &p, why, sizeof(why)), 0, "%s", why);
	free(tok);
	tok = ta_token_hs("{\"alg\":\"HS256\",\"kid\":\"k1\"}", ta_claims(c, sizeof(c), 60, ""), k2,
			  strlen(k2));
	cr_expect_eq(ta_verify(a, tok, &p, why, sizeof(why)), -EKEYREJECTED);
	free(tok);
	tok = ta_token_hs("{\"alg\":\"HS256\",\"kid\":\"k9\"}", ta_claims(c, sizeof(c), 60, ""), k2,
			  strlen(k2));
	cr_expect_eq(ta_verify(a, tok, &p, why, sizeof(why)), -EKEYREJECTED);
	cr_expect(strstr(why, "kid"), "%s", why);
	free(tok);

	cr_assert_eq(auth__set_claims(a, "https://idp", "novamon"), 0);
	tok = ta_token_hs("{\"alg\":\"HS256\",\"kid\":\"k1\"}", ta_claims(c, sizeof(c), 60, ""), k1,
			  strlen(k1));
	cr_expect_eq(ta_verify(a, tok, &p, why, sizeof(why)), -EACCES, "no iss, no aud");
	free(tok);
	tok = ta_token_hs("{\"alg\":\"HS256\",\"kid\":\"k1\"}",
			  ta_claims(c, sizeof(c), 60,
				    "\"iss\":\"https://idp\",\"aud\":[\"x\",\"novamon\"]"),
			  k1, strlen(k1));
	cr_expect_eq(ta_verify(a, tok, &p, why, sizeof(why)), 0, "%s", why);
	free(tok);
	tok = ta_token_hs("{\"alg\":\"HS256\",\"kid\":\"k1\"}",
			  ta_claims(c, sizeof(c), 60, "\"iss\":\"https://idp\",\"aud\":\"other\""),
			  k1, strlen(k1));
	cr_expect_eq(ta_verify(a, tok, &p, why, sizeof(why)), -EACCES);
	free(tok);
	auth__free(a);
}

Test(auth, header_and_access_token)
{
	struct auth *a = ta_hs_auth();
	struct auth_mint m = { .subject = "carol", .role = AUTH_ROLE_ADMIN };
	struct auth_principal p;
	char why[200], hdr[2048], q[2048], *tok;

	m.iat = (int64_t)time(NULL);
	m.exp = m.iat + 600;
	cr_assert_eq(auth__mint_hs256(ta_secret, strlen(ta_secret), &m, &tok), 0);
	cr_expect_eq(auth__check_header(a, NULL, &p, why, sizeof(why)), -ENOENT);
	cr_expect_eq(auth__check_header(a, "", &p, why, sizeof(why)), -ENOENT);
	cr_expect_eq(auth__check_header(a, "Basic YWxhZGRpbjpvcGVu", &p, why, sizeof(why)),
		     -EINVAL);
	cr_expect_eq(auth__check_header(a, "Bearer", &p, why, sizeof(why)), -EINVAL);
	snprintf(hdr, sizeof(hdr), "bearer   %s  ", tok);
	cr_expect_eq(auth__check_header(a, hdr, &p, why, sizeof(why)), 0, "%s", why);
	cr_expect_str_eq(p.subject, "carol");
	snprintf(q, sizeof(q), "x=1&access_token=%s", tok);
	cr_expect_eq(auth__check_request(a, "", q, &p, why, sizeof(why)), 0, "%s", why);
	cr_expect_eq(auth__check_request(a, "", "x=1", &p, why, sizeof(why)), -ENOENT);
	/* the header wins */
	cr_expect_eq(auth__check_request(a, "Bearer a.b.c", q, &p, why, sizeof(why)), -EINVAL);
	free(tok);
	auth__free(a);
}

/* A temporary directory, removed by ta_rmdir (files one level deep and auth/). */
static char ta_dir[64];

static void ta_mkdir(void)
{
	snprintf(ta_dir, sizeof(ta_dir), "/tmp/novamon-test-auth-XXXXXX");
	cr_assert_not_null(mkdtemp(ta_dir));
}

static void ta_rmdir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", ta_dir);
	cr_assert_eq(system(cmd), 0);
}

static void ta_write(const char *path, const char *data, size_t n, mode_t mode)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	cr_assert_eq(fwrite(data, 1, n, f), n);
	fclose(f);
	cr_assert_eq(chmod(path, mode), 0);
}

Test(auth, secret_files)
{
	struct auth *a = auth__new();
	char path[128], err[300];

	ta_mkdir();
	snprintf(path, sizeof(path), "%s/secret", ta_dir);
	ta_write(path, "0123456789abcdef0123456789abcdef-test\n", 38, 0600);
	cr_expect_eq(auth__add_hs256_file(a, path, err, sizeof(err)), 0, "%s", err);
	ta_write(path, "0123456789abcdef0123456789abcdef-test\n", 38, 0644);
	cr_expect_eq(auth__add_hs256_file(a, path, err, sizeof(err)), -EPERM);
	cr_expect(strstr(err, "chmod"), "%s", err);
	ta_write(path, "too short\n", 10, 0600);
	cr_expect_eq(auth__add_hs256_file(a, path, err, sizeof(err)), -EINVAL);
	snprintf(path, sizeof(path), "%s/missing", ta_dir);
	cr_expect_eq(auth__add_hs256_file(a, path, err, sizeof(err)), -ENOENT);
	cr_expect_eq(auth__add_hs256_file(a, ta_dir, err, sizeof(err)), -EINVAL, "a directory");
	auth__free(a);
	/* a text secret loses its newline: the file signs what the bare text signs */
	{
		struct auth *b = auth__new();
		struct auth_principal p;
		char c[512], *tok;

		snprintf(path, sizeof(path), "%s/secret", ta_dir);
		ta_write(path, "0123456789abcdef0123456789abcdef-test\r\n", 39, 0640);
		cr_assert_eq(auth__add_hs256_file(b, path, err, sizeof(err)), 0, "%s", err);
		tok = ta_token_hs(ta_hs_header, ta_claims(c, sizeof(c), 60, ""), ta_secret,
				  strlen(ta_secret));
		cr_expect_eq(ta_verify(b, tok, &p, err, sizeof(err)), 0, "%s", err);
		free(tok);
		auth__free(b);
	}
	ta_rmdir();
}

Test(auth, listen_is_loopback)
{
	cr_expect(auth_listen_is_loopback("127.0.0.1:9477"));
	cr_expect(auth_listen_is_loopback("127.3.2.1:1"));
	cr_expect(auth_listen_is_loopback("[::1]:9477"));
	cr_expect(auth_listen_is_loopback("localhost:9477"));
	cr_expect(!auth_listen_is_loopback(":9477"));
	cr_expect(!auth_listen_is_loopback("0.0.0.0:9477"));
	cr_expect(!auth_listen_is_loopback("[::]:9477"));
	cr_expect(!auth_listen_is_loopback("10.1.2.3:9477"));
	cr_expect(!auth_listen_is_loopback("nonsense"));
	cr_expect(!auth_listen_is_loopback(NULL));
}

Test(auth, setup_modes)
{
	struct auth_setup s = { .mode = AUTH_MODE_AUTO, .listen = "127.0.0.1:9477" };
	struct auth_setup_result res;
	struct auth *a = NULL;
	char err[300], secret[128], path[128];
	struct stat st;

	ta_mkdir();
	s.state_dir = ta_dir;
	/* auto on loopback with no key: open, as before auth existed */
	cr_assert_eq(auth__setup(&s, &a, &res, err, sizeof(err)), 0, "%s", err);
	cr_expect_null(a);
	cr_expect(!res.enforce && res.loopback);
	/* off: never, even on a reachable address */
	s.mode = AUTH_MODE_OFF;
	s.listen = ":9477";
	cr_assert_eq(auth__setup(&s, &a, &res, err, sizeof(err)), 0);
	cr_expect(!a && !res.enforce && !res.loopback);
	/* on without a key: refuse to start */
	s.mode = AUTH_MODE_ON;
	cr_expect_eq(auth__setup(&s, &a, &res, err, sizeof(err)), -ENOKEY);
	cr_expect(strstr(err, "no key"), "%s", err);
	/* auto on a reachable address without a key: a secret is made, once, 0600 */
	s.mode = AUTH_MODE_AUTO;
	cr_assert_eq(auth__setup(&s, &a, &res, err, sizeof(err)), 0, "%s", err);
	cr_expect(a && res.enforce && res.generated);
	snprintf(path, sizeof(path), "%s/%s", ta_dir, AUTH_GENERATED_SECRET);
	cr_expect_str_eq(res.secret_file, path);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0600);
	cr_expect_eq(st.st_size, AUTH_MIN_SECRET);
	a = auth__free(a);
	cr_assert_eq(auth__setup(&s, &a, &res, err, sizeof(err)), 0, "%s", err);
	cr_expect(a && res.enforce && !res.generated);
	a = auth__free(a);
	/* auto with a key on loopback: enforced */
	snprintf(secret, sizeof(secret), "%s/configured", ta_dir);
	ta_write(secret, ta_secret, strlen(ta_secret), 0600);
	s.listen = "127.0.0.1:9477";
	s.hs256_secret_file = secret;
	cr_assert_eq(auth__setup(&s, &a, &res, err, sizeof(err)), 0, "%s", err);
	cr_expect(a && res.enforce && !res.secret_file[0]);
	a = auth__free(a);
	/* a bad key file is an error, not an open door */
	s.rs256_public_key_file = secret;
	cr_expect_eq(auth__setup(&s, &a, &res, err, sizeof(err)), -EINVAL);
	cr_expect_null(a);
	ta_rmdir();
}

/* auth__http_authenticate() reads the request's header and query. */
Test(auth, http_authenticate)
{
	struct auth *a = ta_hs_auth();
	struct auth_mint m = { .subject = "dan", .role = AUTH_ROLE_VIEWER, .tenant = "t1" };
	struct auth_principal p;
	struct http_request req = {
		.method = "GET", .path = "/api/v1/query", .query = "", .authorization = ""
	};
	char hdr[1024], why[200], *tok;

	m.iat = (int64_t)time(NULL);
	m.exp = m.iat + 600;
	cr_assert_eq(auth__mint_hs256(ta_secret, strlen(ta_secret), &m, &tok), 0);
	cr_expect_eq(auth__http_authenticate(a, &req, &p, why, sizeof(why)), -ENOENT);
	snprintf(hdr, sizeof(hdr), "Bearer %s", tok);
	req.authorization = hdr;
	cr_expect_eq(auth__http_authenticate(a, &req, &p, why, sizeof(why)), 0, "%s", why);
	cr_expect_str_eq(p.tenant, "t1");
	free(tok);
	auth__free(a);
}

/* ---------------- the auth: section of the configuration ---------------- */

Test(auth, config_section)
{
	struct config cfg;
	char dir[64] = "/tmp/novamon-test-authcfg-XXXXXX", path[128], err[512];
	FILE *f;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/n.yaml", dir);
	config_defaults(&cfg);
	cr_expect_eq(cfg.auth_mode, CONFIG_AUTH_AUTO);
	cr_expect(cfg.auth_public_metrics);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("auth:\n  mode: on\n  hs256_secret_file: /etc/s\n  rs256_public_key_file: /etc/k.pem\n"
	      "  issuer: idp\n  audience: novamon\n  public_metrics: false\n"
	      "tls:\n  cert_file: /etc/c.pem\n  key_file: /etc/k.key\n",
	      f);
	fclose(f);
	cr_assert_eq(config_load(&cfg, path, true, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(cfg.auth_mode, CONFIG_AUTH_ON);
	cr_expect_str_eq(cfg.auth_hs256_secret_file, "/etc/s");
	cr_expect_str_eq(cfg.auth_rs256_public_key_file, "/etc/k.pem");
	cr_expect_str_eq(cfg.auth_issuer, "idp");
	cr_expect_str_eq(cfg.auth_audience, "novamon");
	cr_expect(!cfg.auth_public_metrics);
	cr_expect_str_eq(cfg.tls_cert_file, "/etc/c.pem");
	cr_expect_str_eq(cfg.tls_key_file, "/etc/k.key");
	f = fopen(path, "w");
	fputs("auth:\n  mode: sometimes\n", f);
	fclose(f);
	cr_expect_eq(config_load(&cfg, path, true, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "auth.mode: unknown mode \"sometimes\""), "%s", err);
	f = fopen(path, "w");
	fputs("auth:\n  password: hunter2\n", f);
	fclose(f);
	cr_expect_eq(config_load(&cfg, path, true, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "auth.password: unknown key"), "%s", err);
	unlink(path);
	rmdir(dir);
}

/* ---------------- the HTTP server's authenticator and audit hook ---------------- */

static struct http_server *th_srv;
static struct metric_store *th_store;
static struct auth *th_auth;
static int th_port;
static pthread_mutex_t th_lock = PTHREAD_MUTEX_INITIALIZER;
static int th_audits, th_audit_status;
static char th_audit_who[64];

/* GET /api/who: the principal as "subject|role|tenant". */
static int th_who(const struct http_request *req, struct http_response *resp, void *ctx)
{
	const struct auth_principal *p = req->principal;

	(void)ctx;
	resp->body = malloc(200);
	snprintf(resp->body, 200, "%s|%s|%s", p ? p->subject : "-",
		 p ? auth_role_name(p->role) : "-", p ? p->tenant : "-");
	resp->body_len = strlen(resp->body);
	resp->content_type = "text/plain";
	return 0;
}

static int th_created(const struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)req;
	(void)ctx;
	resp->status = 201;
	return 0;
}

static void th_audit(void *ctx, const struct http_request *req, int status)
{
	(void)ctx;
	pthread_mutex_lock(&th_lock);
	th_audits++;
	th_audit_status = status;
	snprintf(th_audit_who, sizeof(th_audit_who), "%s",
		 req->principal ? req->principal->subject : "");
	pthread_mutex_unlock(&th_lock);
}

static void th_setup(void)
{
	static const struct http_route routes[] = {
		{ "GET", "/api/who", th_who, NULL },
		{ "POST", "/api/thing", th_created, NULL, .min_role = AUTH_ROLE_OPERATOR },
		{ "GET", "/open/", th_who, NULL },
		{ "POST", "/api/bulk", th_created, NULL, .min_role = AUTH_ROLE_OPERATOR,
		  .flags = HTTP_ROUTE_NO_AUDIT },
		{ "POST", "/api/ingest", th_created, NULL, .min_role = AUTH_ROLE_OPERATOR,
		  .flags = HTTP_ROUTE_ALL_TENANTS },
	};
	static const char *const public_paths[] = { "/open/" };
	struct http_server_opts opts = {
		.routes = routes,
		.nroutes = sizeof(routes) / sizeof(routes[0]),
		.authenticate = auth__http_authenticate,
		.public_paths = public_paths,
		.npublic_paths = 1,
		.audit = th_audit,
	};
	char listen[64];
	int i;

	th_auth = ta_hs_auth();
	th_store = metric_store__new();
	cr_assert_not_null(th_store);
	opts.store = th_store;
	opts.auth_ctx = th_auth;
	th_audits = 0;
	for (i = 0; i < 20; i++) {
		th_port = 21477 + (getpid() + i * 7) % 1000;
		snprintf(listen, sizeof(listen), "127.0.0.1:%d", th_port);
		opts.listen = listen;
		th_srv = http_server__start(&opts);
		if (th_srv || errno != EADDRINUSE)
			break;
	}
	cr_assert_not_null(th_srv, "http_server__start: %s", strerror(errno));
}

static void th_teardown(void)
{
	http_server__stop(th_srv);
	metric_store__free(th_store);
	th_auth = auth__free(th_auth);
}

TestSuite(auth_http, .init = th_setup, .fini = th_teardown, .timeout = 60);

/* One request on its own connection; the whole answer in out (NUL-terminated). Returns the status. */
static int th_request(const char *method, const char *path, const char *token, char *out,
		      size_t len)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)th_port) };
	struct timeval tv = { .tv_sec = 10 };
	char req[4096];
	size_t got = 0;
	ssize_t n;
	int fd, status = 0;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	n = snprintf(req, sizeof(req),
		     "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s%s%s%s\r\n", method, path,
		     token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "",
		     strcmp(method, "GET") ? "Content-Length: 0\r\n" : "");
	cr_assert_eq(write(fd, req, (size_t)n), n);
	while (got + 1 < len && (n = read(fd, out + got, len - got - 1)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(fd);
	sscanf(out, "HTTP/1.1 %d", &status);
	return status;
}

static char *th_mint(enum auth_role role, const char *subject, const char *tenant)
{
	struct auth_mint m = { .subject = subject, .role = role, .tenant = tenant };
	char *tok;

	m.iat = (int64_t)time(NULL);
	m.exp = m.iat + 600;
	cr_assert_eq(auth__mint_hs256(ta_secret, strlen(ta_secret), &m, &tok), 0);
	return tok;
}

static int th_audit_count(void)
{
	int n;

	pthread_mutex_lock(&th_lock);
	n = th_audits;
	pthread_mutex_unlock(&th_lock);
	return n;
}

Test(auth_http, tokens_roles_and_audit)
{
	char *viewer = th_mint(AUTH_ROLE_VIEWER, "vera", "acme");
	char *op = th_mint(AUTH_ROLE_OPERATOR, "otto", "");
	char *op_acme = th_mint(AUTH_ROLE_OPERATOR, "olga", "acme");
	char out[8192];

	cr_expect_eq(th_request("GET", "/health", NULL, out, sizeof(out)), 200);
	cr_expect_eq(th_request("GET", "/open/x", NULL, out, sizeof(out)), 200, "public path");
	cr_expect(strstr(out, "-|-|-"), "no principal on a public path: %s", out);
	cr_expect_eq(th_request("GET", "/metrics", NULL, out, sizeof(out)), 401,
		     "/metrics is not public unless listed");
	cr_expect_eq(th_request("GET", "/api/who", NULL, out, sizeof(out)), 401);
	cr_expect(strcasestr(out, "www-authenticate: Bearer realm=\"novamon\"\r\n"), "%s", out);
	cr_expect(strstr(out, "\"errorType\":\"unauthorized\""), "%s", out);
	cr_expect_eq(th_request("GET", "/api/nowhere", NULL, out, sizeof(out)), 401,
		     "no token: not even a 404");
	cr_expect_eq(th_request("GET", "/api/who", "a.b.c", out, sizeof(out)), 401);
	cr_expect(strcasestr(out, "error=\"invalid_token\", error_description=\""), "%s", out);

	cr_expect_eq(th_request("GET", "/api/who", viewer, out, sizeof(out)), 200);
	cr_expect(strstr(out, "\r\n\r\nvera|viewer|acme"), "%s", out);
	cr_expect_eq(th_request("GET", "/api/nowhere", viewer, out, sizeof(out)), 404);

	cr_expect_eq(th_request("POST", "/api/thing", viewer, out, sizeof(out)), 403);
	cr_expect(strstr(out, "needs the operator role; the token has viewer"), "%s", out);
	cr_expect_eq(th_audit_count(), 1);
	cr_expect_eq(th_audit_status, 403);
	cr_expect_str_eq(th_audit_who, "vera");
	cr_expect_eq(th_request("POST", "/api/thing", op, out, sizeof(out)), 201);
	cr_expect_eq(th_audit_count(), 2);
	cr_expect_eq(th_audit_status, 201);
	cr_expect_str_eq(th_audit_who, "otto");
	/* reads and bulk routes are not audited */
	cr_expect_eq(th_request("POST", "/api/bulk", op, out, sizeof(out)), 201);
	cr_expect_eq(th_request("GET", "/api/who", op, out, sizeof(out)), 200);
	cr_expect_eq(th_audit_count(), 2);
	/* a route over every tenant's data refuses a tenant's token, whatever its role */
	cr_expect_eq(th_request("POST", "/api/ingest", op, out, sizeof(out)), 201);
	cr_expect_eq(th_request("POST", "/api/ingest", op_acme, out, sizeof(out)), 403);
	cr_expect(strstr(out, "limited to tenant acme"), "%s", out);
	cr_expect_eq(th_audit_count(), 4);
	cr_expect_eq(th_audit_status, 403);
	free(viewer);
	free(op);
	free(op_acme);
}
