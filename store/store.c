/* store.c - skeleton: the store is built in its own issue. */
#include "store.h"

const char *store_version(void) { return SLUICE_VERSION; }
