/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `novamon token create`: mint an HS256 bearer token for the daemon's API
 * (see api/auth.h for what the daemon checks) and print it on stdout.
 *
 * The secret is --secret-file, else the configuration's
 * auth.hs256_secret_file, else the one `novamon run` made in auto mode at
 * state_dir/auth/hs256.secret. The token's iss and aud are the
 * configuration's auth.issuer and auth.audience when it sets them.
 */
#include <errno.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "cli.h"
#include "config.h"

#define CLI_TOKEN_DEFAULT_TTL 86400
#define CLI_TOKEN_MAX_TTL (10ll * 366 * 86400)

static void cli_token_usage(FILE *out)
{
	fprintf(out,
		"Usage: novamon token create --role ROLE [OPTIONS]\n"
		"\n"
		"Print a signed (HS256) bearer token for the novamon API.\n"
		"\n"
		"Options:\n"
		"      --role ROLE        admin, operator or viewer (required)\n"
		"      --tenant T         limit the token to tenant T's series (not for admins)\n"
		"      --subject S        who the token is for, as the audit log names it\n"
		"                         (default: the role's name)\n"
		"      --ttl SECONDS      lifetime (default %d)\n"
		"      --secret-file F    the HS256 secret (default: from the configuration)\n"
		"  -c, --config F         configuration file (default %s): its\n"
		"                         auth.hs256_secret_file, or state_dir/%s\n"
		"  -h, --help             show this help\n"
		"\n"
		"Use the token as 'Authorization: Bearer TOKEN' or, for a browser WebSocket,\n"
		"as ?access_token=TOKEN.\n",
		CLI_TOKEN_DEFAULT_TTL, CONFIG_DEFAULT_PATH, AUTH_GENERATED_SECRET);
}

/* Find the secret file and the claims the configuration asks for. Returns 0, or 1 after a message. */
static int cli_token_config(const char *config_path, bool config_given, char *secret_path,
			    size_t len, struct config *cfg)
{
	char err[512];

	config_defaults(cfg);
	if (config_load(cfg, config_path, config_given, err, sizeof(err))) {
		fprintf(stderr, "novamon token: %s\n", err);
		return 1;
	}
	if (secret_path[0])
		return 0;
	if (cfg->auth_hs256_secret_file[0]) {
		snprintf(secret_path, len, "%s", cfg->auth_hs256_secret_file);
		return 0;
	}
	snprintf(secret_path, len, "%s/%s", cfg->state_dir, AUTH_GENERATED_SECRET);
	if (access(secret_path, F_OK)) {
		fprintf(stderr,
			"novamon token: no HS256 secret: give --secret-file, set auth.hs256_secret_file, or run the daemon once in auto mode on a non-loopback address (%s does not exist)\n",
			secret_path);
		return 1;
	}
	return 0;
}

static int cli_token_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "role", required_argument, NULL, 'r' },
		{ "tenant", required_argument, NULL, 't' },
		{ "subject", required_argument, NULL, 's' },
		{ "ttl", required_argument, NULL, 'T' },
		{ "secret-file", required_argument, NULL, 'S' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *role = NULL, *tenant = NULL, *subject = NULL,
		   *config_path = CONFIG_DEFAULT_PATH;
	struct auth_mint m = { 0 };
	struct auth_principal p;
	struct auth *check = NULL;
	struct config *cfg = NULL;
	unsigned char *secret = NULL;
	size_t secret_len = 0;
	char secret_path[512] = "", err[600] = "", *token = NULL, *end;
	long long ttl = CLI_TOKEN_DEFAULT_TTL;
	bool config_given = false;
	int c, rc, ret = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			role = optarg;
			break;
		case 't':
			tenant = optarg;
			break;
		case 's':
			subject = optarg;
			break;
		case 'T':
			errno = 0;
			ttl = strtoll(optarg, &end, 10);
			if (*end || errno || ttl <= 0 || ttl > CLI_TOKEN_MAX_TTL) {
				fprintf(stderr,
					"novamon token: --ttl: '%s' is not a number of seconds in [1, %lld]\n",
					optarg, CLI_TOKEN_MAX_TTL);
				return 2;
			}
			break;
		case 'S':
			snprintf(secret_path, sizeof(secret_path), "%s", optarg);
			break;
		case 'c':
			config_path = optarg;
			config_given = true;
			break;
		case 'h':
			cli_token_usage(stdout);
			return 0;
		default:
			cli_token_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "novamon token create: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!role || auth_role_parse(role, &m.role)) {
		fprintf(stderr,
			"novamon token create: --role admin, operator or viewer is required\n");
		return 2;
	}
	if (tenant && tenant[0] && m.role == AUTH_ROLE_ADMIN) {
		fprintf(stderr,
			"novamon token create: an admin sees every tenant: --tenant is for operator and viewer tokens\n");
		return 2;
	}
	if ((tenant && strlen(tenant) >= sizeof(p.tenant)) ||
	    (subject && (!subject[0] || strlen(subject) >= sizeof(p.subject)))) {
		fprintf(stderr,
			"novamon token create: --subject must be 1 to %zu bytes, --tenant at most %zu\n",
			sizeof(p.subject) - 1, sizeof(p.tenant) - 1);
		return 2;
	}

	cfg = malloc(sizeof(*cfg));
	if (!cfg) {
		fprintf(stderr, "novamon token: out of memory\n");
		return 1;
	}
	/* the configuration is optional with --secret-file, unless named */
	if (secret_path[0] && !config_given)
		config_defaults(cfg);
	else if (cli_token_config(config_path, config_given, secret_path, sizeof(secret_path), cfg))
		goto out;
	rc = auth_read_secret(secret_path, &secret, &secret_len, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "novamon token: %s\n", err);
		goto out;
	}

	m.subject = subject ? subject : auth_role_name(m.role);
	m.tenant = tenant;
	m.issuer = cfg->auth_issuer;
	m.audience = cfg->auth_audience;
	m.iat = (int64_t)time(NULL);
	m.exp = m.iat + ttl;
	rc = auth__mint_hs256(secret, secret_len, &m, &token);
	if (rc) {
		fprintf(stderr, "novamon token: cannot sign: %s\n", strerror(-rc));
		goto out;
	}
	/* what the daemon will check, checked here first */
	check = auth__new();
	if (!check || auth__add_hs256(check, NULL, secret, secret_len) ||
	    auth__set_claims(check, m.issuer, m.audience) ||
	    auth__verify(check, token, strlen(token), m.iat, &p, err, sizeof(err))) {
		fprintf(stderr, "novamon token: the new token does not verify: %s\n", err);
		goto out;
	}
	printf("%s\n", token);
	ret = 0;
out:
	auth__free(check);
	if (secret) {
		OPENSSL_cleanse(secret, secret_len);
		free(secret);
	}
	free(token);
	free(cfg);
	return ret;
}

int cli_token(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "create"))
		return cli_token_create(argc - 1, argv + 1);
	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		cli_token_usage(stdout);
		return 0;
	}
	cli_token_usage(stderr);
	return 2;
}
