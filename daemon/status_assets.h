/* The status page's files (daemon/status/), turned into byte arrays at build time by
 * daemon/status/embed.cmake: the daemon reads no file to serve them. */
#ifndef EVPROXYD_STATUS_ASSETS_H
#define EVPROXYD_STATUS_ASSETS_H

#include <stddef.h>

extern const unsigned char status_asset_html[];
extern const size_t status_asset_html_len;
extern const unsigned char status_asset_js[];
extern const size_t status_asset_js_len;
extern const unsigned char status_asset_css[];
extern const size_t status_asset_css_len;

#endif
