/*
 * tpl_cli.h - `vestnik template`: render one template, check a whole set.
 *
 *   vestnik template render NAME [--locale L] [--channel C] [--data FILE|-]
 *                           [--dir DIR] [--strict] [--tz ZONE] [--now TIME]
 *   vestnik template check [DIR] [--samples DIR] [--tz ZONE]
 *
 * Exit codes: 0 fine, 1 problems found (render failed, check found errors),
 * 2 usage. Uses TEMPLATES_DIR and DEFAULT_LOCALE from the config.
 */
#ifndef VN_TPL_CLI_H
#define VN_TPL_CLI_H

#include <stdio.h>

#include "core/config.h"

/* argv[0] is "template". Output on stdout, diagnostics on stderr. */
int tpl_cli_main(const struct vn_config *cfg, int argc, char **argv);

/* The same with the streams given (tests). cfg may be NULL (defaults). */
int tpl__cli_run(const struct vn_config *cfg, int argc, char **argv, FILE *out, FILE *err);

#endif
