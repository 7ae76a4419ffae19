/* test_ops_util.c - sealed tokens (shard iterators, NextTokens): they open
 * only as made, with their kind, and only in canonical form. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "ops.h"

static struct gw_app app;

static void setup(void)
{
    memset(&app, 0, sizeof app);
    for (size_t i = 0; i < sizeof app.iter_key; i++)
        app.iter_key[i] = (unsigned char)(i * 7 + 1);
}

TestSuite(tokens, .init = setup);

Test(tokens, round_trip)
{
    const char payload[] = "stream-a\0shard 3";
    char *t = gw_op_token_make(&app, 'I', payload, sizeof payload);
    char back[64];
    size_t n;
    int64_t issued;
    cr_assert_eq(gw_op_token_open(&app, 'I', t, back, sizeof back, &n, &issued), 0);
    cr_expect_eq(n, sizeof payload);
    cr_expect_eq(memcmp(back, payload, n), 0);
    cr_expect_gt(issued, 1600000000000LL);
    cr_expect_eq(gw_op_token_open(&app, 'S', t, back, sizeof back, &n, &issued), -1, "kind");
    cr_expect_eq(gw_op_token_open(&app, 'I', t, back, 4, &n, &issued), -1, "capacity");
    free(t);
}

Test(tokens, every_single_character_change_is_refused)
{
    char *t = gw_op_token_make(&app, 'I', "payload-123", 11);
    size_t len = strlen(t);
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char back[64];
    size_t n;
    int64_t issued;
    int opened = 0;
    for (size_t i = 0; i < len; i++) {
        char orig = t[i];
        for (const char *a = alphabet; *a; a++) {
            if (*a == orig)
                continue;
            t[i] = *a;
            opened += gw_op_token_open(&app, 'I', t, back, sizeof back, &n, &issued) == 0;
        }
        t[i] = orig;
    }
    cr_expect_eq(opened, 0, "%d altered tokens opened", opened);
    cr_expect_eq(gw_op_token_open(&app, 'I', "", back, sizeof back, &n, &issued), -1);
    cr_expect_eq(gw_op_token_open(&app, 'I', "not a token!", back, sizeof back, &n, &issued), -1);
    free(t);
}

Test(tokens, another_key_refuses)
{
    char *t = gw_op_token_make(&app, 'L', "x", 1);
    app.iter_key[0] ^= 1;
    char back[8];
    size_t n;
    int64_t issued;
    cr_expect_eq(gw_op_token_open(&app, 'L', t, back, sizeof back, &n, &issued), -1);
    free(t);
}
