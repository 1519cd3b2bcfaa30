/*
 * ntf_send.h - `vestnik send`: publish a test event from the command line.
 */
#ifndef NTF_SEND_H
#define NTF_SEND_H

#include "core/config.h"

extern const char ntf_send_usage[];

/* argv[0] is "send". Returns the exit code (0, 1 broker, 2 usage/event). */
int ntf_send_main(const struct vn_config *cfg, int argc, char **argv);

#endif
