/* ratelimit.c - token buckets; pure, time is an argument.
 *
 * Owns the refill arithmetic behind the per-subscription byte budget: the
 * upstream caller is subscribe.c's pull pump (take, refund, wait), which is
 * called from h2.c's nghttp2 data-source callback; there is no downstream
 * callee. Modelled on nghttp2's lib/nghttp2_ratelim.c, with nanosecond time
 * and a carried fraction so that many small steps lose nothing.
 *
 * Invariants: _tokens <= burst; _frac < 1e9; _frac == 0 whenever the bucket
 * is full; 1 <= rate <= GW_RATELIMIT_MAX_RATE unless rate == 0 (unlimited);
 * 1 <= burst <= GW_RATELIMIT_MAX_BURST. Overflow reasoning is next to each
 * multiplication.
 */
#include "ratelimit.h"

#define NS GW_RATELIMIT_NS_PER_SEC

void gw_ratelimit_init(struct gw_ratelimit *rl, uint64_t rate, uint64_t burst, uint64_t now_ns)
{
    if (rate > GW_RATELIMIT_MAX_RATE)
        rate = GW_RATELIMIT_MAX_RATE;
    if (burst == 0)
        burst = rate ? rate : 1;
    if (burst > GW_RATELIMIT_MAX_BURST)
        burst = GW_RATELIMIT_MAX_BURST;
    rl->rate = rate;
    rl->burst = burst;
    rl->_tokens = burst;
    rl->_frac = 0;
    rl->_last = now_ns;
}

static void fill(struct gw_ratelimit *rl)
{
    rl->_tokens = rl->burst;
    rl->_frac = 0;
}

static void refill(struct gw_ratelimit *rl, uint64_t now)
{
    if (now <= rl->_last) {
        /* Same instant, or the clock went backwards: grant nothing, and
         * re-anchor so that time lost to the jump is not waited out again. */
        rl->_last = now;
        return;
    }
    uint64_t elapsed = now - rl->_last;
    rl->_last = now;
    if (rl->rate == 0 || rl->_tokens == rl->burst) {
        rl->_frac = 0;
        return;
    }
    uint64_t need = rl->burst - rl->_tokens;
    uint64_t secs = elapsed / NS, sub = elapsed % NS;
    /* Whole seconds alone would overshoot: full, and skip the products. */
    if (secs > need / rl->rate) {
        fill(rl);
        return;
    }
    /* secs * rate <= need <= 2^62; sub * rate < 1e9 * 2^34 < 1.72e19, plus
     * _frac < 1e9 stays under 2^64 (1.84e19). */
    uint64_t part = sub * rl->rate + rl->_frac;
    uint64_t gain = secs * rl->rate + part / NS;
    if (gain >= need) {
        fill(rl);
        return;
    }
    rl->_tokens += gain;
    rl->_frac = part % NS;
}

uint64_t gw_ratelimit_available(struct gw_ratelimit *rl, uint64_t now_ns)
{
    refill(rl, now_ns);
    return rl->rate == 0 ? UINT64_MAX : rl->_tokens;
}

uint64_t gw_ratelimit_take(struct gw_ratelimit *rl, uint64_t now_ns, uint64_t want)
{
    refill(rl, now_ns);
    if (rl->rate == 0)
        return want;
    uint64_t got = want < rl->_tokens ? want : rl->_tokens;
    rl->_tokens -= got;
    return got;
}

int gw_ratelimit_take_all(struct gw_ratelimit *rl, uint64_t now_ns, uint64_t n)
{
    refill(rl, now_ns);
    if (rl->rate == 0)
        return 0;
    if (rl->_tokens < n)
        return -1;
    rl->_tokens -= n;
    return 0;
}

void gw_ratelimit_refund(struct gw_ratelimit *rl, uint64_t n)
{
    if (rl->rate == 0)
        return;
    if (n >= rl->burst - rl->_tokens)
        fill(rl);
    else
        rl->_tokens += n;
}

uint64_t gw_ratelimit_wait_ns(struct gw_ratelimit *rl, uint64_t now_ns, uint64_t n)
{
    refill(rl, now_ns);
    if (rl->rate == 0)
        return 0;
    if (n > rl->burst)
        n = rl->burst;
    if (rl->_tokens >= n)
        return 0;
    /* Smallest t with floor((t * rate + _frac) / 1e9) >= need, that is
     * t = ceil((need * 1e9 - _frac) / rate), computed without the product
     * need * 1e9 (up to 2^62 * 1e9) by splitting need = secs * rate + rem. */
    uint64_t need = n - rl->_tokens;
    uint64_t secs = need / rl->rate, rem = need % rl->rate;
    if (secs > (UINT64_MAX - NS) / NS)
        return UINT64_MAX;
    uint64_t t = secs * NS;
    if (rem > 0) {
        /* rem * 1e9 < 2^34 * 1e9 < 2^64, and rem * 1e9 >= 1e9 > _frac. */
        uint64_t v = rem * NS - rl->_frac;
        t += v / rl->rate + (v % rl->rate != 0);
    } else {
        /* ceil(secs * 1e9 - _frac / rate) = secs * 1e9 - floor(_frac / rate);
         * need > 0 and rem == 0 imply secs >= 1, so this cannot underflow. */
        t -= rl->_frac / rl->rate;
    }
    return t;
}
