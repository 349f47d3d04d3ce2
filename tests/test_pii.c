/*
 * test_pii.c - the privacy guard: SHA-256 against FIPS 180 test vectors; the
 * validators (Luhn, IBAN mod-97, SSN rules); each detector on hand-made
 * positives and near-misses; the placeholder map and its restore, streaming
 * included (every way of cutting the answer into two or three chunks, and
 * random chunkings); and the span-level precision and recall per entity type
 * on Presidio's synthetic corpus (../shared/data/pii/presidio), printed as
 * the table docs/gateway.md reproduces.
 */
#include "test.h"

#include "gateway/gateway.h"

#include <cjson/cJSON.h>

static gw_pii *pii;

/* ---- SHA-256 ----------------------------------------------------------------- */

static void test_sha256(void) {
    char hex[65];
    gw_sha256_hex("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    gw_sha256_hex("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    gw_sha256_hex(two, strlen(two), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    /* one million 'a', fed in uneven pieces (block boundaries inside updates) */
    gw_sha256 s;
    gw_sha256_init(&s);
    char a[1000];
    memset(a, 'a', sizeof a);
    size_t fed = 0;
    for (size_t step = 1; fed < 1000000; step = step % 997 + 1) {
        const size_t n = fed + step > 1000000 ? 1000000 - fed : step;
        gw_sha256_update(&s, a, n);
        fed += n;
    }
    uint8_t d[32];
    gw_sha256_final(&s, d);
    static const uint8_t want[32] = {0xcd, 0xc7, 0x6e, 0x5c, 0x99, 0x14, 0xfb, 0x92,
                                     0x81, 0xa1, 0xc7, 0xe2, 0x84, 0xd7, 0x3e, 0x67,
                                     0xf1, 0x80, 0x9a, 0x48, 0xa4, 0x97, 0x20, 0x0e,
                                     0x04, 0x6d, 0x39, 0xcc, 0xc7, 0x11, 0x2c, 0xd0};
    CHECK(!memcmp(d, want, 32));
    /* 55 and 56 bytes: the padding's two cases */
    gw_sha256_hex(a, 55, hex);
    CHECK(!strcmp(hex, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"));
    gw_sha256_hex(a, 56, hex);
    CHECK(!strcmp(hex, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"));
}

/* ---- validators ---------------------------------------------------------- */

static void test_validators(void) {
    CHECK(gw_luhn_ok("4111111111111111", 16));
    CHECK(gw_luhn_ok("79927398713", 11));
    CHECK(gw_luhn_ok("4111-1111-1111-1111", 19));
    CHECK(!gw_luhn_ok("4111111111111112", 16));
    CHECK(!gw_luhn_ok("79927398710", 11));
    CHECK(gw_iban_ok("GB82WEST12345698765432", 22));
    CHECK(gw_iban_ok("DE89370400440532013000", 22));
    CHECK(gw_iban_ok("gb82west12345698765432", 22));
    CHECK(gw_iban_ok("NO9386011117947", 15));
    CHECK(!gw_iban_ok("GB82WEST12345698765433", 22)); /* one digit off */
    CHECK(!gw_iban_ok("GB28WEST12345698765432", 22)); /* transposed check digits */
    CHECK(!gw_iban_ok("GB82WEST1234569876543", 21));  /* wrong length for GB */
    CHECK(!gw_iban_ok("QQ82WEST12345698765432", 22)); /* no such country */
    CHECK(gw_ssn_ok(123, 45, 6788));
    CHECK(!gw_ssn_ok(0, 45, 6788));
    CHECK(!gw_ssn_ok(666, 45, 6788));
    CHECK(!gw_ssn_ok(900, 45, 6788));
    CHECK(!gw_ssn_ok(999, 45, 6788));
    CHECK(!gw_ssn_ok(123, 0, 6788));
    CHECK(!gw_ssn_ok(123, 45, 0));
    CHECK(!gw_ssn_ok(78, 5, 1120));
    CHECK(gw_ssn_ok(899, 99, 9999));
}

/* ---- detectors ------------------------------------------------------------ */

/* Scans text and checks that exactly the expected entities are found: `want`
 * lists "TYPE=value" items separated by '|' ("" = nothing). */
static void expect(const char *text, const char *want) {
    gw_span *spans = NULL;
    size_t n = 0;
    REQUIRE(gw_pii_scan(pii, text, strlen(text), &spans, &n) == HEARTH_OK);
    char got[1024] = "";
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        const int k = snprintf(got + used, sizeof got - used, "%s%s=%.*s", i ? "|" : "",
                               gw_entity_name(spans[i].type), (int)(spans[i].end - spans[i].start),
                               text + spans[i].start);
        if (k > 0 && (size_t)k < sizeof got - used) used += (size_t)k;
    }
    CHECKF(!strcmp(got, want), "in \"%s\": found \"%s\", want \"%s\"", text, got, want);
    free(spans);
}

static void test_detectors(void) {
    /* e-mail */
    expect("write to jane.doe+tag@mail.example.co.uk today",
           "EMAIL=jane.doe+tag@mail.example.co.uk");
    expect("end of sentence: bob@example.com.", "EMAIL=bob@example.com");
    expect("not an address: a@b, x@localhost, .dot@x.com is odd", "EMAIL=dot@x.com");
    expect("user@-bad-.com and user@exa..mple.com", "");
    expect("M\xc3\xbcller@beispiel.de", "EMAIL=M\xc3\xbcller@beispiel.de");
    /* credit cards: Luhn and issuer prefixes */
    expect("card 4111 1111 1111 1111 expires", "CREDIT_CARD=4111 1111 1111 1111");
    expect("card 4111-1111-1111-1111", "CREDIT_CARD=4111-1111-1111-1111");
    expect("amex 378282246310005 ok", "CREDIT_CARD=378282246310005");
    expect("bad luhn 4111111111111112 here", "");
    expect("mixed 4111 1111-1111 1111", "CREDIT_CARD=4111 1111-1111 1111");
    expect("card 4111 1111 1111 1111 2024", "CREDIT_CARD=4111 1111 1111 1111");
    /* IBAN */
    expect("IBAN GB82 WEST 1234 5698 7654 32 thanks", "IBAN=GB82 WEST 1234 5698 7654 32");
    expect("iban de89370400440532013000.", "IBAN=de89370400440532013000");
    expect("GB82WEST12345698765433 fails its check", "");
    /* SSN */
    expect("SSN 123-45-6788.", "SSN=123-45-6788");
    expect("SSN 123 45 6788", "SSN=123 45 6788");
    /* invalid SSNs are still redacted, as phone numbers */
    expect("SSN 666-45-6788 and 123-00-6788 and 078-05-1120",
           "PHONE=666-45-6788|PHONE=123-00-6788|PHONE=078-05-1120");
    expect("mixed 123-45 6788", "PHONE=123-45 6788");
    /* IP addresses */
    expect("from 192.168.1.20, then 10.0.0.1.", "IP=192.168.1.20|IP=10.0.0.1");
    expect("not 256.1.1.1 nor version 1.2.3.4.5", "");
    expect("v6 2001:db8::ff00:42:8329 and ::1 and fe80::1%",
           "IP=2001:db8::ff00:42:8329|IP=::1|IP=fe80::1");
    expect("mapped ::ffff:192.0.2.128 here", "IP=::ffff:192.0.2.128");
    expect("at 12:13:52 the std::map", "");
    /* dates of birth (context mode) */
    expect("She was born on 8/5/1989. Her maiden name", "DOB=8/5/1989");
    expect("DOB: 1975-02-28", "DOB=1975-02-28");
    expect("date of birth: 3 March 1961", "DOB=3 March 1961");
    expect("birthday March 3rd, 1961", "DOB=March 3rd, 1961");
    expect("The meeting is on 8/5/1989 and 2003-08-28", "");
    expect("born 13/13/1990", "");
    /* phones */
    expect("call 555-867-5309 now", "PHONE=555-867-5309");
    expect("Phone: +41 (0)96 471 07 95", "PHONE=+41 (0)96 471 07 95");
    expect("(602)272-9781 or +1-984-182-0190", "PHONE=(602)272-9781|PHONE=+1-984-182-0190");
    expect("desk 345-899-3560x4587", "PHONE=345-899-3560x4587");
    expect("fax 9498777106", "PHONE=9498777106");
    expect("order 9498777106", "");
    expect("lives at 17151 2450 Crown St; my zip code is 90010-170", "");
    expect("driver's license 2270-66-1551", "");
    expect("call me on 450 0840?", "PHONE=450 0840");
    expect("the hotel room 450 0840", "");
    expect("in 1977-1984, zip 12345-6789, 1 000 000 or 12.345.678 euros", "");
    expect("At 2003-08-28 12:13:52 we met", "");
}

/* ---- redaction and restore -------------------------------------------------- */

static const gw_pii_action redact_all[GW_N_ENT] = {0};

static char *redact_text(gw_redaction *r, const char *text, const gw_pii_action *actions) {
    gw_span *spans = NULL;
    size_t n = 0, len = 0;
    char *out = NULL;
    REQUIRE(gw_pii_scan(pii, text, strlen(text), &spans, &n) == HEARTH_OK);
    REQUIRE(gw_redact(r, text, strlen(text), spans, n, actions, &out, &len) == HEARTH_OK);
    CHECK(len == strlen(out));
    free(spans);
    return out;
}

static char *restore_chunks(const gw_redaction *r, const char *s, const size_t *cuts, int n_cuts) {
    gw_restorer st;
    gw_restorer_init(&st, r);
    gw_buf out = {0};
    size_t at = 0;
    for (int i = 0; i <= n_cuts; i++) {
        const size_t to = i < n_cuts ? cuts[i] : strlen(s);
        REQUIRE(gw_restorer_feed(&st, s + at, to - at, &out) == HEARTH_OK);
        at = to;
    }
    REQUIRE(gw_restorer_flush(&st, &out) == HEARTH_OK);
    return gw_buf_take(&out, NULL);
}

static void test_redaction(void) {
    gw_redaction *r = gw_redaction_new();
    REQUIRE(r);
    const char *m1 = "Mail bob@example.com or alice@example.org; card 4111 1111 1111 1111.";
    const char *m2 = "Again: bob@example.com, and call 555-867-5309.";
    char *s1 = redact_text(r, m1, redact_all);
    char *s2 = redact_text(r, m2, redact_all);
    CHECKF(!strcmp(s1, "Mail <EMAIL_1> or <EMAIL_2>; card <CREDIT_CARD_1>."), "%s", s1);
    CHECKF(!strcmp(s2, "Again: <EMAIL_1>, and call <PHONE_1>."), "%s", s2);
    CHECK(gw_redaction_size(r) == 4);
    CHECK(gw_redaction_count(r, GW_ENT_EMAIL) == 3);
    CHECK(gw_redaction_count(r, GW_ENT_PHONE) == 1);
    char summary[128];
    gw_redaction_summary(r, summary, sizeof summary);
    CHECKF(!strcmp(summary, "EMAIL:3,PHONE:1,CREDIT_CARD:1"), "%s", summary);
    for (size_t i = 0; i < gw_redaction_size(r); i++) {
        const char *v, *ph;
        size_t vl;
        gw_redaction_entry(r, i, &v, &vl, &ph);
        CHECK(!strstr(s1, v) && !strstr(s2, v));
    }

    /* whole restore: known placeholders back, unknown and malformed ones kept */
    const char *answer = "Hi <EMAIL_2>! <EMAIL_1> paid with <CREDIT_CARD_1>; <EMAIL_9>, <EMAIL_>, "
                         "<email_1>, <PHONE_1><PHONE_1>, <<EMAIL_1>>, <EMAIL_01> end <";
    const char *want = "Hi alice@example.org! bob@example.com paid with 4111 1111 1111 1111; "
                       "<EMAIL_9>, <EMAIL_>, <email_1>, 555-867-5309555-867-5309, "
                       "<bob@example.com>, bob@example.com end <";
    gw_buf b = {0};
    REQUIRE(gw_restore(r, answer, strlen(answer), &b) == HEARTH_OK);
    CHECKF(!strcmp(b.data, want), "%s", b.data);
    gw_buf_free(&b);

    /* streaming: every cut into two and three chunks restores the same */
    const size_t n = strlen(answer);
    int bad = 0;
    for (size_t i = 0; i <= n; i++) {
        char *got = restore_chunks(r, answer, &i, 1);
        bad += strcmp(got, want) != 0;
        free(got);
        for (size_t j = i; j <= n && j < i + 40; j++) {
            const size_t cuts[2] = {i, j};
            got = restore_chunks(r, answer, cuts, 2);
            bad += strcmp(got, want) != 0;
            free(got);
        }
    }
    CHECKF(bad == 0, "%d chunkings restored differently", bad);
    /* one byte at a time, and random chunkings */
    unsigned long long seed = 42;
    for (int t = 0; t < 200; t++) {
        size_t cuts[64];
        int k = 0;
        for (size_t at = 0; k < 64;) {
            at += t == 0 ? 1 : 1 + test_rand_u64(&seed) % 12;
            if (at >= n) break;
            cuts[k++] = at;
        }
        char *got = restore_chunks(r, answer, cuts, k);
        CHECKF(!strcmp(got, want), "chunking %d: %s", t, got);
        free(got);
    }

    /* allow: the type passes untouched; nothing mapped means pass-through */
    gw_redaction *r2 = gw_redaction_new();
    gw_pii_action allow_phone[GW_N_ENT] = {0};
    allow_phone[GW_ENT_PHONE] = GW_PII_ALLOW;
    char *s3 = redact_text(r2, m2, allow_phone);
    CHECKF(!strcmp(s3, "Again: <EMAIL_1>, and call 555-867-5309."), "%s", s3);
    gw_redaction *empty = gw_redaction_new();
    char *same = restore_chunks(empty, "<EMAIL_1> <EM", (const size_t[]){3}, 1);
    CHECK(!strcmp(same, "<EMAIL_1> <EM"));
    free(same);
    free(s1);
    free(s2);
    free(s3);
    gw_redaction_free(r);
    gw_redaction_free(r2);
    gw_redaction_free(empty);
}

/* ---- Presidio's corpus -------------------------------------------------------- */

typedef struct tally {
    int tp, fp, fn, overlap_tp;
} tally;

/* Byte offset of code point `cp` in UTF-8 s. */
static size_t cp_to_byte(const char *s, size_t len, long cp) {
    size_t i = 0;
    for (long k = 0; k < cp && i < len; k++) {
        i++;
        while (i < len && ((unsigned char)s[i] & 0xc0) == 0x80) i++;
    }
    return i;
}

static bool gold_type(const char *name, gw_entity *t) {
    if (!strcmp(name, "DATE_TIME")) {
        *t = GW_ENT_DOB;
        return true;
    }
    return gw_entity_parse(name, t);
}

static bool birth_context(const char *text, size_t start) {
    const size_t from = start > 48 ? start - 48 : 0;
    char window[64] = "";
    snprintf(window, sizeof window, "%.*s", (int)(start - from), text + from);
    for (char *p = window; *p; p++) *p = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
    return strstr(window, "born") || strstr(window, "birth") || strstr(window, "dob");
}

static int test_presidio(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/data/pii/presidio/synth_dataset_v2.shared.json",
             HEARTH_SHARED_DIR);
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("test_pii: %s is absent: skipping the corpus evaluation\n", path);
        return TEST_SKIP;
    }
    fseek(f, 0, SEEK_END);
    const long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *json = malloc((size_t)size + 1);
    REQUIRE(json && fread(json, 1, (size_t)size, f) == (size_t)size);
    json[size] = '\0';
    fclose(f);
    cJSON *root = cJSON_Parse(json);
    free(json);
    REQUIRE(cJSON_IsArray(root));

    tally t[GW_N_ENT] = {0};
    int dob_birth_total = 0, dob_birth_found = 0, n_texts = 0, leaks = 0;
    const cJSON *rec;
    cJSON_ArrayForEach(rec, root) {
        const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(rec, "full_text"));
        REQUIRE(text);
        const size_t len = strlen(text);
        n_texts++;
        gw_span *pred = NULL;
        size_t n_pred = 0;
        REQUIRE(gw_pii_scan(pii, text, len, &pred, &n_pred) == HEARTH_OK);
        bool *used = calloc(n_pred + 1, sizeof *used);
        const cJSON *sp;
        cJSON_ArrayForEach(sp, cJSON_GetObjectItem(rec, "spans")) {
            gw_entity type;
            if (!gold_type(cJSON_GetStringValue(cJSON_GetObjectItem(sp, "entity_type")), &type))
                continue;
            const size_t gs =
                cp_to_byte(text, len, (long)cJSON_GetObjectItem(sp, "start_position")->valuedouble);
            const size_t ge =
                cp_to_byte(text, len, (long)cJSON_GetObjectItem(sp, "end_position")->valuedouble);
            const bool birth = type == GW_ENT_DOB && birth_context(text, gs);
            dob_birth_total += birth;
            bool exact = false, overlap = false;
            for (size_t i = 0; i < n_pred; i++) {
                if (pred[i].type != type || pred[i].end <= gs || pred[i].start >= ge) continue;
                overlap = true;
                if (pred[i].start == gs && pred[i].end == ge && !used[i]) {
                    used[i] = exact = true;
                    break;
                }
            }
            t[type].tp += exact;
            t[type].fn += !exact;
            t[type].overlap_tp += overlap;
            dob_birth_found += birth && exact;
        }
        for (size_t i = 0; i < n_pred; i++) {
            if (used[i]) continue;
            t[pred[i].type].fp++;
            if (getenv("HEARTH_PII_VERBOSE"))
                printf("  FP %s: \"%.*s\" in \"%.60s\"\n", gw_entity_name(pred[i].type),
                       (int)(pred[i].end - pred[i].start), text + pred[i].start, text);
        }
        /* what a remote tier would receive holds none of the values mapped */
        gw_redaction *r = gw_redaction_new();
        char *sent = NULL;
        size_t sent_len;
        REQUIRE(gw_redact(r, text, len, pred, n_pred, redact_all, &sent, &sent_len) == HEARTH_OK);
        for (size_t i = 0; i < gw_redaction_size(r); i++) {
            const char *v, *ph;
            size_t vl;
            gw_redaction_entry(r, i, &v, &vl, &ph);
            leaks += strstr(sent, v) != NULL;
        }
        gw_buf back = {0};
        REQUIRE(gw_restore(r, sent, sent_len, &back) == HEARTH_OK);
        CHECK(back.len == len && !memcmp(back.data, text, len)); /* the round trip is exact */
        gw_buf_free(&back);
        free(sent);
        gw_redaction_free(r);
        free(used);
        free(pred);
    }
    cJSON_Delete(root);
    CHECK(leaks == 0);

    printf("Presidio synth_dataset_v2 (70%% shared part, %d texts), exact span match:\n", n_texts);
    printf("| entity | gold | found | precision | recall | recall (overlap) |\n");
    printf("|---|---:|---:|---:|---:|---:|\n");
    static const char *const gold_names[GW_N_ENT] = {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD",
                                                     "IBAN_CODE",     "US_SSN",       "IP_ADDRESS",
                                                     "DATE_TIME"};
    double prec[GW_N_ENT], recall[GW_N_ENT];
    for (int k = 0; k < GW_N_ENT; k++) {
        const int gold = t[k].tp + t[k].fn, found = t[k].tp + t[k].fp;
        prec[k] = found ? (double)t[k].tp / found : 1.0;
        recall[k] = gold ? (double)t[k].tp / gold : 1.0;
        printf("| %s | %d | %d | %.3f | %.3f | %.3f |\n", gold_names[k], gold, found, prec[k],
               recall[k], gold ? (double)t[k].overlap_tp / gold : 1.0);
    }
    printf("DATE_TIME: %d of %d are birth dates (\"born\"/\"birth\"/\"DOB\" before them); "
           "recall on those: %d/%d\n",
           dob_birth_total, t[GW_ENT_DOB].tp + t[GW_ENT_DOB].fn, dob_birth_found, dob_birth_total);
    /* floors: the structured kinds must be near perfect; phones and dates are
     * reported honestly with lower floors (international formats, and only
     * birth dates are in scope) */
    const gw_entity strict[] = {GW_ENT_EMAIL, GW_ENT_CREDIT_CARD, GW_ENT_IBAN, GW_ENT_SSN,
                                GW_ENT_IP};
    for (size_t i = 0; i < sizeof strict / sizeof strict[0]; i++) {
        CHECKF(prec[strict[i]] >= 0.9, "%s precision %.3f", gw_entity_name(strict[i]),
               prec[strict[i]]);
        CHECKF(recall[strict[i]] >= 0.9, "%s recall %.3f", gw_entity_name(strict[i]),
               recall[strict[i]]);
    }
    CHECKF(prec[GW_ENT_PHONE] >= 0.8 && recall[GW_ENT_PHONE] >= 0.7, "phone P %.3f R %.3f",
           prec[GW_ENT_PHONE], recall[GW_ENT_PHONE]);
    CHECKF(prec[GW_ENT_DOB] >= 0.9, "date of birth precision %.3f", prec[GW_ENT_DOB]);
    CHECKF(dob_birth_total > 0 && dob_birth_found * 10 >= dob_birth_total * 9,
           "birth dates found %d of %d", dob_birth_found, dob_birth_total);
    return 0;
}

int main(void) {
    REQUIRE(gw_pii_new(GW_DOB_CONTEXT, &pii) == HEARTH_OK);
    test_sha256();
    test_validators();
    test_detectors();
    test_redaction();
    const int corpus = test_presidio();
    gw_pii_free(pii);
    /* all dates in GW_DOB_ALL mode */
    REQUIRE(gw_pii_new(GW_DOB_ALL, &pii) == HEARTH_OK);
    expect("The meeting is on 8/5/1989 and 2003-08-28", "DOB=8/5/1989|DOB=2003-08-28");
    gw_pii_free(pii);
    const int rc = test_done("test_pii");
    return rc ? rc : corpus == TEST_SKIP ? TEST_SKIP : 0;
}
