/* SPDX-License-Identifier: Apache-2.0 */
/* novamon: the command-line entry point; dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
	fprintf(out, "Usage: novamon COMMAND [OPTIONS]\n"
		     "\n"
		     "Observability for KVM hypervisor hosts, from the kernel.\n"
		     "\n"
		     "Commands:\n"
		     "  run       run the daemon (eBPF capture, per-second metrics, HTTP API)\n"
		     "  top       live terminal view of a running daemon, like kvm_stat\n"
		     "  query     run a PromQL query against a running daemon\n"
		     "  detect    score a CSV time series for anomalies, offline\n"
		     "  token     create a bearer token for the API (token create --role ...)\n"
		     "  version   print the version\n"
		     "\n"
		     "Run 'novamon COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd || !strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(cmd ? stdout : stderr);
		return cmd ? 0 : 2;
	}
	if (!strcmp(cmd, "run"))
		return cli_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "top"))
		return cli_top(argc - 1, argv + 1);
	if (!strcmp(cmd, "query"))
		return cli_query(argc - 1, argv + 1);
	if (!strcmp(cmd, "detect"))
		return cli_detect(argc - 1, argv + 1);
	if (!strcmp(cmd, "token"))
		return cli_token(argc - 1, argv + 1);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("novamon %s\n", NOVAMON_VERSION);
		return 0;
	}
	fprintf(stderr, "novamon: unknown command '%s'\n\n", cmd);
	usage(stderr);
	return 2;
}
