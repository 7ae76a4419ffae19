/* store.h - the shard store's only public header (skeleton until issue 3). */
#ifndef SLUICE_STORE_H
#define SLUICE_STORE_H

/* Returns the store's version string; static storage, never freed. */
const char *store_version(void);

#endif
