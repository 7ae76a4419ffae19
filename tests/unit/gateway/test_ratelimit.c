/* test_ratelimit.c - unit tests for gateway/ratelimit.c.
 *
 * Explicit timestamps for the documented rules (start full, exact refill with
 * carried fractions, clock going backwards, huge gaps, unlimited rate, the
 * clamps), then a model check: random operations applied both to the bucket
 * and to a 128-bit reference that keeps tokens in units of 1e-9 token, which
 * must agree exactly, including gw_ratelimit_wait_ns() being the smallest
 * sufficient wait (as nghttp2's tests/nghttp2_ratelim_test.c does for its
 * bucket, with more cases). */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "ratelimit.h"

#define SEC GW_RATELIMIT_NS_PER_SEC
#define MS (SEC / 1000)

Test(ratelimit, starts_full_and_grants_partially)
{
    struct gw_ratelimit rl;
    gw_ratelimit_init(&rl, 1000, 500, 42);
    cr_assert_eq(gw_ratelimit_available(&rl, 42), 500);
    cr_assert_eq(gw_ratelimit_take(&rl, 42, 200), 200);
    cr_assert_eq(gw_ratelimit_take(&rl, 42, 1000), 300);
    cr_assert_eq(gw_ratelimit_take(&rl, 42, 1), 0);
    cr_assert_eq(gw_ratelimit_take(&rl, 42, 0), 0);
}

Test(ratelimit, refill_is_exact_with_fractions)
{
    struct gw_ratelimit rl;
    gw_ratelimit_init(&rl, 1000, 1000, 0); /* one token per ms */
    cr_assert_eq(gw_ratelimit_take(&rl, 0, 1000), 1000);
    cr_assert_eq(gw_ratelimit_available(&rl, MS / 2), 0);
    cr_assert_eq(gw_ratelimit_available(&rl, MS), 1);
    /* 1000 steps of 1.5 ms gain exactly 1500 tokens, capped at 1000. */
    gw_ratelimit_take(&rl, MS, 1);
    uint64_t now = MS, got = 0;
    for (int i = 0; i < 600; i++) {
        now += MS + MS / 2;
        got += gw_ratelimit_take(&rl, now, UINT64_MAX);
    }
    cr_assert_eq(got, 900);
    /* Steps of 1 ns at 1000 B/s: a token every 1e6 steps, none lost. */
    gw_ratelimit_init(&rl, 1000, 10, 0);
    gw_ratelimit_take(&rl, 0, 10);
    for (uint64_t t = 1; t <= 3 * MS; t++)
        got = gw_ratelimit_available(&rl, t);
    cr_assert_eq(got, 3);
}

Test(ratelimit, sustained_rate_matches)
{
    /* 2 MiB/s with a 2 MiB burst, drained every ms for 10 s: the burst plus
     * exactly 20 MiB. */
    struct gw_ratelimit rl;
    uint64_t rate = 2 * 1024 * 1024;
    gw_ratelimit_init(&rl, rate, rate, 1000);
    uint64_t got = 0;
    for (uint64_t t = 1000; t <= 1000 + 10 * SEC; t += MS)
        got += gw_ratelimit_take(&rl, t, UINT64_MAX);
    cr_assert_eq(got, rate + 10 * rate);
}

Test(ratelimit, clock_backwards_grants_nothing_and_reanchors)
{
    struct gw_ratelimit rl;
    gw_ratelimit_init(&rl, 1000, 1000, 10 * SEC);
    gw_ratelimit_take(&rl, 10 * SEC, 1000);
    cr_assert_eq(gw_ratelimit_available(&rl, 5 * SEC), 0);
    /* Counted from 5 s, not from 10 s: 100 ms later there are 100 tokens. */
    cr_assert_eq(gw_ratelimit_available(&rl, 5 * SEC + 100 * MS), 100);
    cr_assert_eq(gw_ratelimit_available(&rl, 0), 100);
    cr_assert_eq(gw_ratelimit_available(&rl, 0), 100);
    cr_assert_eq(gw_ratelimit_available(&rl, 10 * MS), 110);
}

Test(ratelimit, huge_gaps_and_extremes_do_not_overflow)
{
    struct gw_ratelimit rl;
    gw_ratelimit_init(&rl, GW_RATELIMIT_MAX_RATE, GW_RATELIMIT_MAX_BURST, 0);
    cr_assert_eq(gw_ratelimit_take(&rl, 0, UINT64_MAX), GW_RATELIMIT_MAX_BURST);
    cr_assert_eq(gw_ratelimit_available(&rl, UINT64_MAX), GW_RATELIMIT_MAX_BURST);
    gw_ratelimit_take(&rl, UINT64_MAX, UINT64_MAX);
    cr_assert_eq(gw_ratelimit_available(&rl, UINT64_MAX), 0);
    uint64_t w = gw_ratelimit_wait_ns(&rl, UINT64_MAX, UINT64_MAX);
    /* 2^62 tokens at 2^34/s: 2^28 s, representable in ns. */
    cr_assert_eq(w, (UINT64_C(1) << 28) * SEC);

    gw_ratelimit_init(&rl, 1, GW_RATELIMIT_MAX_BURST, 0);
    gw_ratelimit_take(&rl, 0, UINT64_MAX);
    cr_assert_eq(gw_ratelimit_wait_ns(&rl, 0, UINT64_MAX), UINT64_MAX, "saturates");
    uint64_t have = gw_ratelimit_available(&rl, UINT64_MAX);
    cr_assert_eq(have, UINT64_MAX / SEC);
    cr_assert_eq(gw_ratelimit_wait_ns(&rl, UINT64_MAX, have + 1), SEC - (UINT64_MAX % SEC));
}

Test(ratelimit, zero_rate_is_unlimited)
{
    struct gw_ratelimit rl;
    gw_ratelimit_init(&rl, 0, 0, 0);
    cr_assert_eq(gw_ratelimit_take(&rl, 0, UINT64_MAX), UINT64_MAX);
    cr_assert_eq(gw_ratelimit_take(&rl, 0, 7), 7);
    cr_assert_eq(gw_ratelimit_take_all(&rl, 0, UINT64_MAX), 0);
    cr_assert_eq(gw_ratelimit_available(&rl, 0), UINT64_MAX);
    cr_assert_eq(gw_ratelimit_wait_ns(&rl, 0, UINT64_MAX), 0);
    gw_ratelimit_refund(&rl, 5);
    cr_assert_eq(gw_ratelimit_available(&rl, 1), UINT64_MAX);
}

Test(ratelimit, init_defaults_and_clamps)
{
    struct gw_ratelimit rl;
    gw_ratelimit_init(&rl, 300, 0, 0);
    cr_assert_eq(rl.burst, 300);
    gw_ratelimit_init(&rl, UINT64_MAX, UINT64_MAX, 0);
    cr_assert_eq(rl.rate, GW_RATELIMIT_MAX_RATE);
    cr_assert_eq(rl.burst, GW_RATELIMIT_MAX_BURST);
    gw_ratelimit_init(&rl, 0, 0, 0);
    cr_assert_eq(rl.rate, 0);
    cr_assert_geq(rl.burst, 1);
}

Test(ratelimit, take_all_and_refund)
{
    struct gw_ratelimit rl;
    gw_ratelimit_init(&rl, 100, 50, 0);
    cr_assert_eq(gw_ratelimit_take_all(&rl, 0, 51), -1);
    cr_assert_eq(gw_ratelimit_available(&rl, 0), 50);
    cr_assert_eq(gw_ratelimit_take_all(&rl, 0, 30), 0);
    cr_assert_eq(gw_ratelimit_take_all(&rl, 0, 30), -1);
    cr_assert_eq(gw_ratelimit_available(&rl, 0), 20);
    gw_ratelimit_refund(&rl, 10);
    cr_assert_eq(gw_ratelimit_available(&rl, 0), 30);
    gw_ratelimit_refund(&rl, UINT64_MAX);
    cr_assert_eq(gw_ratelimit_available(&rl, 0), 50);
}

Test(ratelimit, wait_ns_is_exact)
{
    struct gw_ratelimit rl;
    gw_ratelimit_init(&rl, 3, 10, 0); /* 3 tokens/s: a token every 333.33 ms */
    gw_ratelimit_take(&rl, 0, 10);
    cr_assert_eq(gw_ratelimit_wait_ns(&rl, 0, 1), 333333334);
    cr_assert_eq(gw_ratelimit_wait_ns(&rl, 0, 3), SEC);
    cr_assert_eq(gw_ratelimit_wait_ns(&rl, 0, 1000), gw_ratelimit_wait_ns(&rl, 0, 10),
                 "clamped to burst");
    cr_assert_eq(gw_ratelimit_available(&rl, 333333333), 0);
    cr_assert_eq(gw_ratelimit_available(&rl, 333333334), 1);
    /* With a carried fraction: 1e9 - 2 (fraction 2/3 token left) */
    cr_assert_eq(gw_ratelimit_wait_ns(&rl, 333333334, 2), 333333333);
    cr_assert_eq(gw_ratelimit_wait_ns(&rl, 333333334, 0), 0);
}

/* ---- model check ------------------------------------------------------- */

typedef unsigned __int128 u128;

struct model {
    u128 rate, burst, t; /* t: nano-tokens */
    uint64_t last;
};

static void m_refill(struct model *m, uint64_t now)
{
    if (now > m->last) {
        m->t += (u128)(now - m->last) * m->rate;
        if (m->t > m->burst * SEC)
            m->t = m->burst * SEC;
    }
    m->last = now;
}

static uint64_t m_avail(const struct model *m)
{
    return (uint64_t)(m->t / SEC);
}

static uint64_t rnd64(void)
{
    return (uint64_t)random() << 42 ^ (uint64_t)random() << 21 ^ (uint64_t)random();
}

static uint64_t pick(uint64_t max)
{
    return max == UINT64_MAX ? rnd64() : rnd64() % (max + 1);
}

Test(ratelimit, matches_exact_model)
{
    srandom(12345);
    for (int round = 0; round < 300; round++) {
        uint64_t rates[] = {1, 3, 1000, 2 * 1024 * 1024, 999999937, GW_RATELIMIT_MAX_RATE};
        uint64_t rate = round % 2 ? rates[random() % 6] : 1 + pick(GW_RATELIMIT_MAX_RATE - 1);
        uint64_t bursts[] = {1, 7, rate, 4 * rate, GW_RATELIMIT_MAX_BURST};
        uint64_t burst = round % 3 ? bursts[random() % 5] : 1 + pick(UINT64_C(1) << 40);
        uint64_t now = pick(UINT64_MAX / 2);
        struct gw_ratelimit rl;
        gw_ratelimit_init(&rl, rate, burst, now);
        struct model m = {rl.rate, rl.burst, (u128)rl.burst * SEC, now};
        for (int step = 0; step < 2000; step++) {
            /* Mostly small forward steps, sometimes big, backwards or huge. */
            switch (random() % 10) {
            case 0:
                now -= pick(now < SEC ? now : SEC);
                break;
            case 1:
                now += pick(UINT64_MAX - now);
                break;
            case 2:
                now += pick(now < UINT64_MAX - 1000 ? 1000 : 0);
                break;
            default:
                now += pick(now < UINT64_MAX - 10 * SEC ? 10 * MS : 0);
            }
            m_refill(&m, now);
            uint64_t want = random() % 2 ? pick(2 * burst) : pick(UINT64_MAX);
            switch (random() % 4) {
            case 0: {
                uint64_t got = gw_ratelimit_take(&rl, now, want);
                uint64_t exp = want < m_avail(&m) ? want : m_avail(&m);
                cr_assert_eq(got, exp, "round %d step %d", round, step);
                m.t -= (u128)got * SEC;
                break;
            }
            case 1:
                cr_assert_eq(gw_ratelimit_available(&rl, now), m_avail(&m));
                break;
            case 2: {
                /* A pump refunds right after its take, at the same time. */
                uint64_t r = pick(burst);
                gw_ratelimit_take(&rl, now, 0);
                gw_ratelimit_refund(&rl, r);
                m.t += (u128)r * SEC;
                if (m.t > m.burst * SEC)
                    m.t = m.burst * SEC;
                break;
            }
            default: {
                uint64_t n = want > burst ? burst : want;
                uint64_t w = gw_ratelimit_wait_ns(&rl, now, want);
                u128 need = (u128)n * SEC;
                u128 exp = need <= m.t ? 0 : (need - m.t + m.rate - 1) / m.rate;
                if (exp > UINT64_MAX)
                    exp = UINT64_MAX;
                cr_assert_eq(w, (uint64_t)exp, "round %d step %d: w=%llu exp=%llu rate=%llu burst=%llu n=%llu tok=%llu frac=%llu mt=%llu", round, step, (unsigned long long)w, (unsigned long long)exp, (unsigned long long)rate, (unsigned long long)burst, (unsigned long long)n, (unsigned long long)rl._tokens, (unsigned long long)rl._frac, (unsigned long long)(m.t / SEC));
                /* At now + w the tokens are there, and 1 ns earlier not. */
                if (w > 0 && w != UINT64_MAX && now <= UINT64_MAX - w) {
                    struct gw_ratelimit c = rl;
                    cr_assert_geq(gw_ratelimit_available(&c, now + w), n);
                    c = rl;
                    cr_assert_lt(gw_ratelimit_available(&c, now + w - 1), n);
                }
            }
            }
            cr_assert_leq(rl._tokens, rl.burst);
            cr_assert_lt(rl._frac, SEC);
        }
    }
}
