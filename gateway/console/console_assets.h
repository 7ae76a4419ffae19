/* console_assets.h - the web console's files, embedded at build time.
 *
 * embed.cmake writes the table (console_assets.c in the build directory)
 * from the files listed in console.cmake; ops_console.c serves it. */
#ifndef SLUICE_GW_CONSOLE_ASSETS_H
#define SLUICE_GW_CONSOLE_ASSETS_H

#include <stddef.h>

struct gw_console_asset {
    const char *name;          /* served as /dashboard/<name> */
    const char *content_type;
    const char *etag;          /* strong, quoted: "<32 hex digits of SHA-256>" */
    const unsigned char *data;
    size_t len;
};

/* Ends with a row whose name is NULL. */
extern const struct gw_console_asset gw_console_assets[];

#endif
