/* test_catalog_burst.c - many catalog changes in flight at once, end to end.
 *
 * A catalog change (CreateStream, AddTagsToStream, RegisterStreamConsumer) is
 * answered only once the manifest that holds it is durable: the reply waits
 * as a catalog waiter at the manifest's version. Fired together from several
 * HTTP/2 connections, the changes land in different loop passes, so waiters
 * at two or more versions are pending when a manifest becomes durable; the
 * store once overran its waiter buffer and lost a reply there.
 *
 * Here 120 changes go out at once, none waiting for another, over 8 h2c
 * connections; then 16 connections each keep one change in flight, sending
 * the next as soon as the last is answered (20 rounds each), so manifests
 * keep becoming durable while newer changes wait. Every change must be
 * answered within a bounded time with its proper reply (success, or the
 * service's LimitExceededException where Kinesis limits changes in
 * progress), what was acknowledged must be what the catalog holds, also after
 * a restart, and the server must exit cleanly (under ASan an overrun aborts
 * it). */
#include <criterion/criterion.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fanout_client.h"
#include "harness.h"

#define N 40     /* changes of each kind in the burst */
#define CONNS 8
#define CHAINS 16 /* connections with one change in flight each */
#define ROUNDS 20

static struct srv S;
static struct event_base *base;
static struct fc_conn *ctl;

static void fini(void)
{
    fc_conn_free(ctl);
    ctl = NULL;
    if (base)
        event_base_free(base);
    base = NULL;
    if (S.pid > 0)
        cr_expect_eq(srv_stop(&S, 15000), 0, "sluice did not exit cleanly (log %s)", S.log);
}

TestSuite(catalog_burst, .fini = fini, .timeout = 120);

static const char *jstr(json_t *o, const char *a, const char *b)
{
    json_t *j = json_object_get(o, a);
    if (b)
        j = json_object_get(j, b);
    return json_string_value(j);
}

static json_t *call(int *status, const char *op, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static json_t *call(int *status, const char *op, const char *fmt, ...)
{
    char body[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    return fc_call_sync(ctl, op, body, status, 10000);
}

static void start(const char *const *args)
{
    srv_start(&S, args);
    base = event_base_new();
    ctl = fc_conn_new(base, "127.0.0.1", S.port, NULL);
    cr_assert_not_null(ctl);
}

static void restart(const char *const *args)
{
    fc_conn_free(ctl);
    ctl = NULL;
    event_base_free(base);
    base = NULL;
    cr_assert_eq(srv_stop(&S, 15000), 0, "sluice did not exit cleanly (log %s)", S.log);
    start(args);
}

/* ---- one change in flight ------------------------------------------------------ */

enum kind { CREATE, TAG, CONSUMER, KINDS };
static const char *const kind_op[] = {"CreateStream", "AddTagsToStream", "RegisterStreamConsumer"};

struct change {
    enum kind kind;
    int i;
    bool answered;
    int status;
    char type[96];
    char message[256];
    int *left;
};

static void on_reply(int status, json_t *reply, void *ud)
{
    struct change *c = ud;
    c->answered = true;
    c->status = status;
    const char *t = jstr(reply, "__type", NULL), *m = jstr(reply, "message", NULL);
    snprintf(c->type, sizeof c->type, "%s", t ? t : "");
    snprintf(c->message, sizeof c->message, "%s", m ? m : "");
    (*c->left)--;
}

/* An answer is proper if it is a success, or the service's refusal of a
 * change beyond its limits (five streams or consumers CREATING at once). */
static bool proper(const struct change *c)
{
    if (c->status == 200)
        return c->type[0] == '\0';
    if (c->status != 400)
        return false;
    return c->kind != TAG && strcmp(c->type, "LimitExceededException") == 0;
}

static bool in_array(json_t *arr, const char *member, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        const char *v = member ? jstr(e, member, NULL) : json_string_value(e);
        if (v && strcmp(v, name) == 0)
            return true;
    }
    return false;
}

/* ---- chains: one change in flight per connection ------------------------------- */

struct chain {
    struct fc_conn *c;
    int k, round;         /* round: the change in flight */
    int acked;            /* the last round answered 200, -1 none */
    int bad_status;       /* first improper answer, 0 none */
    char bad_type[96];
    int *left;
};

static void chain_send(struct chain *ch);

static void on_chain_reply(int status, json_t *reply, void *ud)
{
    struct chain *ch = ud;
    if (status == 200) {
        ch->acked = ch->round;
    } else if (!ch->bad_status) {
        const char *t = jstr(reply, "__type", NULL);
        ch->bad_status = status ? status : -1;
        snprintf(ch->bad_type, sizeof ch->bad_type, "%s", t ? t : "");
    }
    if (++ch->round < ROUNDS)
        chain_send(ch);
    else
        (*ch->left)--;
}

/* Each chain overwrites its own tag of stream "churn" with its round. */
static void chain_send(struct chain *ch)
{
    char body[128];
    snprintf(body, sizeof body, "{\"StreamName\":\"churn\",\"Tags\":{\"t%02d\":\"%d\"}}", ch->k,
             ch->round);
    if (fc_call(ch->c, "AddTagsToStream", body, strlen(body), on_chain_reply, ch) != 0) {
        if (!ch->bad_status)
            ch->bad_status = -2;
        (*ch->left)--;
    }
}

static const char *tag_value(json_t *tags, const char *key)
{
    size_t i;
    json_t *e;
    json_array_foreach(tags, i, e) {
        const char *k = jstr(e, "Key", NULL);
        if (k && strcmp(k, key) == 0)
            return jstr(e, "Value", NULL);
    }
    return NULL;
}

/* Checks that the catalog holds exactly what was acknowledged. */
static void check_catalog(const struct change *ch, const struct chain *chains, const char *sarn,
                          const char *when)
{
    int st;
    json_t *r = call(&st, "ListTagsForStream", "{\"StreamName\":\"churn\",\"Limit\":50}");
    cr_assert_eq(st, 200, "%s: ListTagsForStream churn %d", when, st);
    json_t *tags = json_object_get(r, "Tags");
    for (int k = 0; k < CHAINS; k++) {
        char key[16], want[16];
        snprintf(key, sizeof key, "t%02d", k);
        snprintf(want, sizeof want, "%d", chains[k].acked);
        const char *v = tag_value(tags, key);
        cr_expect(v && strcmp(v, want) == 0, "%s: tag %s is %s, the last acknowledged was %s",
                  when, key, v ? v : "missing", want);
    }
    json_decref(r);

    r = call(&st, "ListTagsForStream", "{\"StreamName\":\"base\",\"Limit\":50}");
    cr_assert_eq(st, 200, "%s: ListTagsForStream %d", when, st);
    tags = json_object_get(r, "Tags");
    cr_expect_eq(json_array_size(tags), N, "%s: %zu tags, %d acknowledged", when,
                 json_array_size(tags), N);
    for (int i = 0; i < N; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%02d", i);
        cr_expect(in_array(tags, "Key", key), "%s: acknowledged tag %s is missing", when, key);
    }
    json_decref(r);

    r = call(&st, "ListStreams", "{\"Limit\":100}");
    cr_assert_eq(st, 200, "%s: ListStreams %d", when, st);
    json_t *names = json_object_get(r, "StreamNames");
    for (int i = 0; i < N; i++) {
        const struct change *c = &ch[CREATE * N + i];
        char name[32];
        snprintf(name, sizeof name, "burst-%02d", i);
        cr_expect_eq(in_array(names, NULL, name), c->status == 200,
                     "%s: stream %s answered %d but %s the catalog", when, name, c->status,
                     c->status == 200 ? "is not in" : "is in");
    }
    json_decref(r);

    r = call(&st, "ListStreamConsumers", "{\"StreamARN\":\"%s\"}", sarn);
    cr_assert_eq(st, 200, "%s: ListStreamConsumers %d", when, st);
    json_t *cons = json_object_get(r, "Consumers");
    for (int i = 0; i < N; i++) {
        const struct change *c = &ch[CONSUMER * N + i];
        char name[32];
        snprintf(name, sizeof name, "c%02d", i);
        cr_expect_eq(in_array(cons, "ConsumerName", name), c->status == 200,
                     "%s: consumer %s answered %d but %s the catalog", when, name, c->status,
                     c->status == 200 ? "is not in" : "is in");
    }
    json_decref(r);
}

/* Creates stream "name", waits until ACTIVE, copies its ARN. */
static void mk_stream(const char *name, char *arn, size_t cap)
{
    int st;
    json_t *r = call(&st, "CreateStream", "{\"StreamName\":\"%s\",\"ShardCount\":1}", name);
    cr_assert_eq(st, 200, "CreateStream %s: %d", name, st);
    json_decref(r);
    arn[0] = '\0';
    for (int i = 0; i < 250 && !arn[0]; i++) {
        r = call(&st, "DescribeStreamSummary", "{\"StreamName\":\"%s\"}", name);
        const char *s = jstr(r, "StreamDescriptionSummary", "StreamStatus");
        if (st == 200 && s && strcmp(s, "ACTIVE") == 0)
            snprintf(arn, cap, "%s", jstr(r, "StreamDescriptionSummary", "StreamARN"));
        json_decref(r);
        if (!arn[0])
            fc_run_for(base, 20);
    }
    cr_assert(arn[0], "stream %s never became ACTIVE", name);
}

static void burst(const char *const *args)
{
    memset(&S, 0, sizeof S);
    start(args);
    char sarn[256], churn_arn[256];
    mk_stream("base", sarn, sizeof sarn);
    mk_stream("churn", churn_arn, sizeof churn_arn);

    struct fc_conn *conns[CONNS];
    for (int k = 0; k < CONNS; k++) {
        conns[k] = fc_conn_new(base, "127.0.0.1", S.port, NULL);
        cr_assert_not_null(conns[k]);
    }
    static struct change ch[KINDS * N];
    int left = KINDS * N;
    /* Interleaved, so that every connection carries every kind. */
    for (int i = 0; i < N; i++)
        for (int k = 0; k < KINDS; k++) {
            struct change *c = &ch[k * N + i];
            *c = (struct change){.kind = (enum kind)k, .i = i, .left = &left};
            char body[512];
            if (k == CREATE)
                snprintf(body, sizeof body, "{\"StreamName\":\"burst-%02d\",\"ShardCount\":1}", i);
            else if (k == TAG)
                snprintf(body, sizeof body, "{\"StreamName\":\"base\",\"Tags\":{\"k%02d\":\"v%d\"}}",
                         i, i);
            else
                snprintf(body, sizeof body, "{\"StreamARN\":\"%s\",\"ConsumerName\":\"c%02d\"}",
                         sarn, i);
            cr_assert_eq(fc_call(conns[(i * KINDS + k) % CONNS], kind_op[k], body, strlen(body),
                                 on_reply, c),
                         0);
        }
    /* Bounded: a lost reply shows as a change still unanswered here. */
    int64_t end = fc_now_mono_ns() + 30000 * 1000000LL;
    while (left > 0 && fc_now_mono_ns() < end)
        fc_run_for(base, 10);

    int ok[KINDS] = {0};
    for (int j = 0; j < KINDS * N; j++) {
        const struct change *c = &ch[j];
        cr_expect(c->answered, "%s #%d never answered", kind_op[c->kind], c->i);
        if (!c->answered)
            continue;
        cr_expect(proper(c), "%s #%d answered %d %s: %s", kind_op[c->kind], c->i, c->status,
                  c->type, c->message);
        ok[c->kind] += c->status == 200;
    }
    cr_log_info("of %d each: CreateStream %d, AddTagsToStream %d, RegisterStreamConsumer %d "
                "succeeded",
                N, ok[CREATE], ok[TAG], ok[CONSUMER]);
    cr_assert_eq(left, 0, "%d of %d changes unanswered after 30 s", left, KINDS * N);
    cr_expect_eq(ok[TAG], N, "every tag fits the stream's 50");
    cr_expect_geq(ok[CREATE], 1);
    cr_expect_geq(ok[CONSUMER], 1);
    for (int k = 0; k < CONNS; k++) {
        cr_expect(!fc_conn_failed(conns[k]), "connection %d: %s", k, fc_conn_error(conns[k]));
        fc_conn_free(conns[k]);
    }
    cr_assert(srv_alive(&S), "the server died in the burst (log %s)", S.log);

    /* Chains: every connection starts at once, then sends on each answer. */
    static struct chain chains[CHAINS];
    int chains_left = CHAINS;
    for (int k = 0; k < CHAINS; k++) {
        chains[k] = (struct chain){.k = k, .acked = -1, .left = &chains_left};
        chains[k].c = fc_conn_new(base, "127.0.0.1", S.port, NULL);
        cr_assert_not_null(chains[k].c);
    }
    for (int k = 0; k < CHAINS; k++)
        chain_send(&chains[k]);
    end = fc_now_mono_ns() + 30000 * 1000000LL;
    while (chains_left > 0 && fc_now_mono_ns() < end)
        fc_run_for(base, 10);
    for (int k = 0; k < CHAINS; k++) {
        const struct chain *c = &chains[k];
        cr_expect_eq(c->round, ROUNDS, "chain %d: answered %d of %d changes in 30 s", k, c->round,
                     ROUNDS);
        cr_expect_eq(c->bad_status, 0, "chain %d: answered %d %s", k, c->bad_status, c->bad_type);
        cr_expect(!fc_conn_failed(c->c), "chain %d: %s", k, fc_conn_error(c->c));
        fc_conn_free(c->c);
    }
    cr_assert_eq(chains_left, 0, "%d of %d chains unfinished after 30 s", chains_left, CHAINS);
    cr_assert(srv_alive(&S), "the server died in the chains (log %s)", S.log);

    /* Acknowledged means durable: the same after a restart. */
    check_catalog(ch, chains, sarn, "after the changes");
    restart(args);
    check_catalog(ch, chains, sarn, "after a restart");
}

Test(catalog_burst, every_change_answered_durability_always) { burst(NULL); }

/* With interval durability the waiters of several loop passes share one
 * manifest write, and later ones wait at newer versions meanwhile. */
Test(catalog_burst, every_change_answered_durability_interval)
{
    const char *args[] = {"--durability", "interval:100", NULL};
    burst(args);
}
