/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auth: JWT bearer tokens for the HTTP and WebSocket routes.
 *
 * A token is a compact JWS (RFC 7515) signed with HS256 (a shared secret)
 * or RS256 (an RSA key of at least 2048 bits; we hold the public half).
 * Several keys may be loaded; a token's optional "kid" header picks among
 * them. What is checked, in this order:
 *   - the shape: three base64url parts without padding, at most
 *     AUTH_MAX_TOKEN bytes, a JSON object header and payload (duplicate
 *     keys rejected, so no two parsers can read a token differently);
 *   - the header: "alg" is HS256 or RS256 ("none" and anything else are
 *     refused), no "crit"; the key is chosen by alg AND kid, so a key is only
 *     ever used with its own algorithm (an RS256 public key is never taken
 *     as an HMAC secret: no alg confusion);
 *   - the signature, in constant time for HMAC;
 *   - the claims: "exp" (required) and "nbf" (optional) with
 *     AUTH_LEEWAY_S of clock skew; "iss" and "aud" when configured;
 *     "sub" (required), "role" (required: admin, operator, viewer) and
 *     "tenant" (optional; absent or "" is every tenant, and it is ignored
 *     for admins).
 *
 * A struct auth is immutable once set up: any number of threads may verify
 * with it at once.
 */
#ifndef NOVAMON_AUTH_H
#define NOVAMON_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_MAX_TOKEN 8192
#define AUTH_MAX_KEYS 16
#define AUTH_LEEWAY_S 60
/* HS256 secrets: at least the hash size (RFC 7518 3.2). */
#define AUTH_MIN_SECRET 32
#define AUTH_GENERATED_SECRET "auth/hs256.secret" /* under the state directory */

/* Ordered by power: a route needing OPERATOR admits OPERATOR and ADMIN. */
enum auth_role {
	AUTH_ROLE_VIEWER,
	AUTH_ROLE_OPERATOR,
	AUTH_ROLE_ADMIN,
};

/* Who made a request, as its token says. */
struct auth_principal {
	char subject[64];
	enum auth_role role;
	char tenant[64]; /* "" = every tenant (always "" for admins) */
};

enum auth_alg {
	AUTH_ALG_HS256,
	AUTH_ALG_RS256,
};

struct auth;

/* An empty verifier (no key: every token fails). Returns NULL with errno set. */
struct auth *auth__new(void);
/* Free a verifier; NULL is fine. Returns NULL. */
struct auth *auth__free(struct auth *a);

/*
 * Add an HS256 secret of len bytes (at least AUTH_MIN_SECRET), with an
 * optional kid (NULL or "": none). Returns 0, -EINVAL (too short, kid too
 * long), -ENOSPC (AUTH_MAX_KEYS held) or -ENOMEM.
 */
int auth__add_hs256(struct auth *a, const char *kid, const void *secret, size_t len);
/*
 * Add every RSA public key in a PEM text (PUBLIC KEY, RSA PUBLIC KEY or
 * CERTIFICATE blocks), each with the optional kid. Returns the number of
 * keys added (>= 1), or -EINVAL with a reason in err (no key, a private key,
 * not RSA, shorter than 2048 bits), -ENOSPC or -ENOMEM.
 */
int auth__add_rs256_pem(struct auth *a, const char *kid, const char *pem, size_t len, char *err,
			size_t errlen);
/*
 * Load a key file: an HS256 secret (the file's bytes; one trailing newline
 * is dropped when the file is text) or an RS256 PEM file. A secret file
 * others may read or write is refused. Returns 0 (or the key count for
 * RS256) or a negative errno with "path: reason" in err.
 */
int auth__add_hs256_file(struct auth *a, const char *path, char *err, size_t errlen);
/*
 * Read an HS256 secret file as auth__add_hs256_file() does, into a malloc'd
 * *secret of *len bytes (clear it with OPENSSL_cleanse() before free()).
 * Returns 0 or a negative errno with "path: reason" in err.
 */
int auth_read_secret(const char *path, unsigned char **secret, size_t *len, char *err,
		     size_t errlen);
int auth__add_rs256_file(struct auth *a, const char *path, char *err, size_t errlen);
/* Require "iss" == issuer and/or "aud" to hold audience (NULL or "": not checked). */
int auth__set_claims(struct auth *a, const char *issuer, const char *audience);
/* How many keys are loaded. */
size_t auth__nkeys(const struct auth *a);

/*
 * Verify a compact token of len bytes at unix time now_s and fill *out.
 * Returns 0, or a negative errno with a one-line reason in why (safe to send
 * to the client: it never echoes the token):
 *   -EINVAL       malformed (shape, base64url, JSON, types, sizes)
 *   -EKEYREJECTED alg refused, no key for it, or a bad signature
 *   -EKEYEXPIRED  expired, or not valid yet
 *   -EACCES       iss/aud mismatch, no or unknown role, no subject
 */
int auth__verify(const struct auth *a, const char *token, size_t len, int64_t now_s,
		 struct auth_principal *out, char *why, size_t whylen);
/*
 * Verify an Authorization header value "Bearer TOKEN" (scheme case-blind)
 * at the current time. Returns as auth__verify(), and -ENOENT for an empty
 * or NULL header ("no bearer token").
 */
int auth__check_header(const struct auth *a, const char *authorization, struct auth_principal *out,
		       char *why, size_t whylen);
/*
 * The Authorization header when it is set, else an access_token parameter
 * of the raw query string (RFC 6750 2.3: browsers cannot set headers on a
 * WebSocket). Returns as auth__check_header().
 */
int auth__check_request(const struct auth *a, const char *authorization, const char *query,
			struct auth_principal *out, char *why, size_t whylen);

/* An http_server_opts.authenticate for ctx = struct auth (header or access_token). */
struct http_request;
int auth__http_authenticate(void *ctx, const struct http_request *req, struct auth_principal *out,
			    char *why, size_t whylen);

/* The claims of a token to mint. */
struct auth_mint {
	const char *subject;
	enum auth_role role;
	const char *tenant; /* NULL or "": none */
	const char *issuer; /* NULL or "": none */
	const char *audience; /* NULL or "": none */
	const char *kid; /* NULL or "": none */
	int64_t iat; /* unix seconds */
	int64_t nbf; /* 0: none */
	int64_t exp;
};

/*
 * Sign the claims with HS256 and secret. *token is malloc'd and
 * NUL-terminated. Returns 0, -EINVAL (bad claims, secret shorter than
 * AUTH_MIN_SECRET) or -ENOMEM.
 */
int auth__mint_hs256(const void *secret, size_t len, const struct auth_mint *m, char **token);

/* "admin", "operator", "viewer"; parse returns 0 or -EINVAL. */
const char *auth_role_name(enum auth_role r);
int auth_role_parse(const char *s, enum auth_role *r);

enum auth_mode {
	AUTH_MODE_AUTO, /* enforce when a key is configured or the port is not loopback */
	AUTH_MODE_ON,
	AUTH_MODE_OFF,
};

/* What auth__setup() works from: the auth: section of the config and the port. */
struct auth_setup {
	enum auth_mode mode;
	const char *hs256_secret_file; /* NULL or "": none */
	const char *rs256_public_key_file;
	const char *issuer;
	const char *audience;
	const char *listen; /* the HTTP listen address */
	const char *state_dir; /* for the generated secret */
};

struct auth_setup_result {
	bool enforce;
	bool loopback; /* listen is a loopback address */
	bool generated; /* the secret below was created by this call */
	char secret_file[512]; /* the secret made for auto mode, or "" */
};

/*
 * Decide whether to enforce tokens and load the keys (see config.h, auth:).
 * In auto mode on a non-loopback address with no key configured, a random
 * AUTH_MIN_SECRET-byte secret is created at state_dir/AUTH_GENERATED_SECRET
 * (mode 0600, directory 0700) unless it exists, and used; the caller then
 * tells the operator how to mint the first admin token. *out is the
 * verifier, or NULL when not enforcing. Returns 0, or a negative errno with
 * a message in err (a bad key file; -ENOKEY: mode on and no key).
 * Library code: nothing is logged here.
 */
int auth__setup(const struct auth_setup *s, struct auth **out, struct auth_setup_result *res,
		char *err, size_t errlen);

/* Whether listen ("HOST:PORT", see http_parse_listen()) binds loopback only. */
bool auth_listen_is_loopback(const char *listen);

/*
 * Internals, exposed for the unit tests. Base64url without padding: encode
 * writes NUL-terminated text (out needs 4 * ceil(len / 3) + 1 bytes) and
 * returns its length; decode returns the byte count, or -EINVAL for a
 * character outside the alphabet, padding, an impossible length or
 * non-zero trailing bits, or -E2BIG when it does not fit in cap.
 */
size_t auth_b64url_encode(const void *in, size_t len, char *out);
int auth_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap);

#endif /* NOVAMON_AUTH_H */
