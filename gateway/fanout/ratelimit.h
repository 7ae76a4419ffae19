/* ratelimit.h - token bucket with injected time (pure).
 *
 * subscribe.c keeps one bucket per consumer-shard subscription (2 MiB/s by
 * default) and asks it, each time nghttp2 pulls data, how many bytes of
 * event-stream messages it may send now; when the answer is too small it
 * defers the stream and arms a timer for gw_ratelimit_wait_ns(). Time is an
 * argument (a monotonic clock in nanoseconds), never read here, so tests
 * drive the bucket with explicit timestamps (nghttp2's nghttp2_ratelim.c).
 *
 * Semantics:
 * - The bucket starts full ("burst" tokens) at the time given to _init().
 * - Refill is exact over any sequence of calls: after elapsed time t since
 *   the bucket was last full, it has gained floor(t * rate / 1e9) tokens
 *   (fractions carry over between calls), capped at "burst".
 * - A timestamp older than the last one seen (a clock that went backwards)
 *   grants nothing and re-anchors the bucket at that timestamp, so a later
 *   forward step counts from there instead of stalling until the old time
 *   comes back. Arbitrarily large gaps simply fill the bucket; no arithmetic
 *   overflows for any inputs.
 * - rate == 0 means UNLIMITED: every request is granted in full and no wait
 *   is ever needed (the gateway's "--consumer-rate 0" turns the cap off).
 * - burst == 0 means one second's worth of tokens ("rate").
 * - rate is capped at GW_RATELIMIT_MAX_RATE and burst at GW_RATELIMIT_MAX_BURST
 *   (larger values are clamped), which keeps the arithmetic in 64 bits.
 */
#ifndef GW_RATELIMIT_H
#define GW_RATELIMIT_H

#include <stdint.h>

#define GW_RATELIMIT_MAX_RATE (UINT64_C(1) << 34)  /* 16 GiB/s */
#define GW_RATELIMIT_MAX_BURST (UINT64_C(1) << 62)
#define GW_RATELIMIT_NS_PER_SEC UINT64_C(1000000000)

/* A token bucket, embedded by value in its owner (no heap, no _clear needed).
 * Fields starting with '_' belong to ratelimit.c. */
struct gw_ratelimit {
    uint64_t rate;    /* tokens (bytes) per second; 0 = unlimited */
    uint64_t burst;   /* capacity in tokens */
    uint64_t _tokens; /* current whole tokens, <= burst */
    uint64_t _frac;   /* fractional tokens, in units of 1e-9 token, < 1e9 */
    uint64_t _last;   /* timestamp (ns) of the last refill */
};

/* Sets up "rl" with "rate" bytes/s and a capacity of "burst" bytes (see the
 * rules above for 0 and for clamping), full at time "now_ns". */
void gw_ratelimit_init(struct gw_ratelimit *rl, uint64_t rate, uint64_t burst, uint64_t now_ns);

/* Refills "rl" up to "now_ns" and returns the tokens available now
 * (UINT64_MAX when unlimited). Takes nothing. */
uint64_t gw_ratelimit_available(struct gw_ratelimit *rl, uint64_t now_ns);

/* Refills "rl" up to "now_ns" and takes up to "want" tokens; returns how many
 * were granted (0..want; "want" when unlimited). A pump sends what it was
 * granted and gives back what it did not use with gw_ratelimit_refund(). */
uint64_t gw_ratelimit_take(struct gw_ratelimit *rl, uint64_t now_ns, uint64_t want);

/* All-or-nothing: takes exactly "n" tokens and returns 0, or takes nothing
 * and returns -1 when fewer than "n" are available (always, if n > burst). */
int gw_ratelimit_take_all(struct gw_ratelimit *rl, uint64_t now_ns, uint64_t n);

/* Returns "n" unused tokens (granted earlier by _take) to the bucket, up to
 * its capacity. */
void gw_ratelimit_refund(struct gw_ratelimit *rl, uint64_t n);

/* Nanoseconds from "now_ns" until at least min("n", burst) tokens will be
 * available: 0 if they are already there (or the bucket is unlimited). The
 * cap at "burst" makes sure a waiter always wakes up; a request for more than
 * the burst must be split by the caller. Refills "rl" up to "now_ns" first.
 * Calling gw_ratelimit_available() at now_ns + result yields >= that many. */
uint64_t gw_ratelimit_wait_ns(struct gw_ratelimit *rl, uint64_t now_ns, uint64_t n);

#endif /* GW_RATELIMIT_H */
