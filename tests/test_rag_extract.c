/*
 * test_rag_extract.c - HTML and PDF files in the index: the format chosen
 * by name and by content, the exact text extracted from HTML (scripts,
 * styles, entities, nested blocks, a Latin-1 charset, <pre>, broken
 * markup), PDFs written here with cairo's PDF surface (two pages of
 * non-ASCII text in order, a page without text, a truncated file, random
 * bytes, an encrypted file) and `hearth rag index` + `query` over a
 * directory of .txt, .html and .pdf files, with change detection and
 * --prune.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp */

#include "core/core.h"
#include "rag/rag_impl.h"
#include "test.h"
#include "test_sh.h"

#include <cairo-pdf.h>
#include <cairo.h>
#include <cjson/cJSON.h>
#include <sqlite3.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/hearth-test-rag-extract-XXXXXX";

/* LeakSanitizer's hook (used only under ASan): fontconfig, which cairo asks
 * for the test PDFs' font, leaks some of its configuration while parsing it
 * (a direct leak inside FcInitLoadConfigAndFonts, reported however the
 * caches are emptied). Only this test uses fontconfig - the library's PDF
 * reading does not - and with the default fast unwinding the report's stack
 * stops inside libfontconfig, so the module is what can be named. */
// NOLINTNEXTLINE(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp): LeakSanitizer's hook
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libfontconfig.so\n"; }

static void write_file(const char *name, const void *data, size_t len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    REQUIRE(f && fwrite(data, 1, len, f) == len);
    fclose(f);
}

/* rag_extract on a copy of data[0..n) (NUL after it, as rag_ingest reads). */
static const char *extract(rag_format f, const char *data, size_t n, size_t max, rag_doc *doc) {
    static char why[256];
    char *copy = malloc(n + 1);
    REQUIRE(copy);
    memcpy(copy, data, n);
    copy[n] = '\0';
    const char *no = rag_extract(f, copy, n, max, doc, why, sizeof why);
    if (no || doc->text != copy) free(copy);
    return no;
}

static void check_text(const char *html, size_t n, const char *want, const char *title) {
    rag_doc d;
    const char *no = extract(RAG_FORMAT_HTML, html, n, 1 << 20, &d);
    CHECKF(!no, "skipped: %s", no ? no : "");
    if (no) return;
    CHECKF(d.len == strlen(d.text) && strcmp(d.text, want) == 0, "got [%s]\nwant [%s]", d.text,
           want);
    CHECKF(strcmp(d.title, title) == 0, "title [%s], want [%s]", d.title, title);
    CHECK(d.page_start == NULL && d.n_pages == 0);
    rag_doc_fini(&d);
}
#define CHECK_HTML(html, want, title) check_text((html), sizeof(html) - 1, want, title)

/* ---- formats --------------------------------------------------------------- */

static void test_format(void) {
    CHECK(rag_format_of("/a/b.html", "", 0) == RAG_FORMAT_HTML);
    CHECK(rag_format_of("/a/B.HTM", "", 0) == RAG_FORMAT_HTML);
    CHECK(rag_format_of("x.xhtml", "", 0) == RAG_FORMAT_HTML);
    CHECK(rag_format_of("/a/report.PDF", "", 0) == RAG_FORMAT_PDF);
    CHECK(rag_format_of("/a/notes.txt", "", 0) == RAG_FORMAT_TEXT);
    CHECK(rag_format_of("/a.html/notes", "", 0) == RAG_FORMAT_TEXT); /* a directory's dot */
    /* content as the backup */
    CHECK(rag_format_of("/a/scan", "%PDF-1.7\n", 9) == RAG_FORMAT_PDF);
    CHECK(rag_format_of("/a/page.txt", "%PDF-1.4", 8) == RAG_FORMAT_PDF);
    CHECK(rag_format_of("/a/saved", "\xEF\xBB\xBF \n<!DOCTYPE html>", 22) == RAG_FORMAT_HTML);
    CHECK(rag_format_of("/a/saved", "<HTML lang=en>", 14) == RAG_FORMAT_HTML);
    CHECK(rag_format_of("/a/saved", "<body>", 6) == RAG_FORMAT_HTML);
    CHECK(rag_format_of("/a/saved", "<header>", 8) == RAG_FORMAT_TEXT);
    CHECK(rag_format_of("/a/readme.md", "<html>", 6) == RAG_FORMAT_TEXT); /* named as text */
    CHECK(rag_format_of("/a/saved", "plain words", 11) == RAG_FORMAT_TEXT);
    CHECK(rag_format_of("/a/x", "%PDF", 4) == RAG_FORMAT_TEXT);

    rag_doc d;
    CHECK(extract(RAG_FORMAT_TEXT, "ok\n", 3, 1 << 20, &d) == NULL && d.len == 3);
    rag_doc_fini(&d);
    const char *no = extract(RAG_FORMAT_TEXT, "a\xFF", 2, 1 << 20, &d);
    CHECKF(no && strstr(no, "not UTF-8 text (an invalid sequence at byte 1)"), "%s", no);
    no = extract(RAG_FORMAT_TEXT, "a\0b", 3, 1 << 20, &d);
    CHECK(no && strstr(no, "NUL"));
}

/* ---- HTML ------------------------------------------------------------------ */

static void test_html(void) {
    CHECK_HTML("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n"
               "<title>  The   Pump\n Manual </title>\n"
               "<style>p { color: red }</style><script>var x = \"<p>no</p>\";</script>\n"
               "<link rel=stylesheet href=x.css></head>\n"
               "<body><!-- a comment -->\n"
               "<div class=nav><ul><li>Home</li><li>Parts &amp; service</li></ul></div>\n"
               "<h1>Servicing   the\n   pump</h1>\n"
               "<div><div><p>Turn the valve &lt;clockwise&gt;.\n   Then wait&nbsp;5&#160;min"
               "&#x2014;no more.</p></div>\n"
               "<p>Caf&eacute; <b>bold</b><i>italic</i> &euro;5 &#128512;</p></div>\n"
               "<noscript>Enable JavaScript</noscript><template><p>later</p></template>\n"
               "<p hidden>secret</p>"
               "<table><tr><th>Part</th><th>Price</th></tr><tr><td>Valve</td><td>12</td></tr>"
               "</table>\n"
               "<pre>\nint main(void) {\n    return 0;\n}\n</pre>\n"
               "<p>Line one<br>line two</p></body></html>\n",
               "The Pump Manual\n\n"
               "Home\nParts & service\n\n"
               "Servicing the pump\n\n"
               "Turn the valve <clockwise>. Then wait 5 min\xE2\x80\x94no more.\n\n"
               "Caf\xC3\xA9 bolditalic \xE2\x82\xAC"
               "5 \xF0\x9F\x98\x80\n\n"
               "Part Price\nValve 12\n\n"
               "int main(void) {\n    return 0;\n}\n\n"
               "Line one\nline two",
               "The Pump Manual");
    /* Latin-1, declared both ways: libxml2 converts to UTF-8 */
    CHECK_HTML("<html><head><meta charset=\"iso-8859-1\"><title>Caf\xE9</title></head>"
               "<body><p>Cr\xE8me br\xFBl\xE9"
               "e, 3\xB0"
               "C.</p></body></html>",
               "Caf\xC3\xA9\n\nCr\xC3\xA8me br\xC3\xBBl\xC3\xA9"
               "e, 3\xC2\xB0"
               "C.",
               "Caf\xC3\xA9");
    CHECK_HTML("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; "
               "charset=ISO-8859-1\"></head><body>na\xEFve</body></html>",
               "na\xC3\xAFve", "");
    /* broken markup recovers */
    CHECK_HTML("<p>one<p>two</div></span><li>three<li>four</ul><h2>five<p>six",
               "one\n\ntwo\n\nthree\nfour\n\nfive\n\nsix", "");
    CHECK_HTML("<p>cut <b>in the mid", "cut in the mid", "");
    CHECK_HTML("<div><p>a tag cut in <a href=\"x", "a tag cut in", "");
    CHECK_HTML("", "", "");
    CHECK_HTML("<html><script>only code</script></html>", "", "");
    CHECK_HTML("<title>only a title</title>", "only a title", "only a title");
    /* a long title is cut at a character, not inside one */
    {
        char html[1200] = "<title>";
        for (int i = 0; i < 200; i++) strcat(html, "\xC3\xA9");
        strcat(html, "</title><p>body</p>");
        rag_doc d;
        REQUIRE(extract(RAG_FORMAT_HTML, html, strlen(html), 1 << 20, &d) == NULL);
        CHECK(strlen(d.title) == 254 && hr_utf8_valid(d.title, 254, NULL));
        CHECK(strncmp(d.text, d.title, 254) == 0 && strstr(d.text, "\n\nbody"));
        rag_doc_fini(&d);
    }
    { /* a cut after a word leaves no space at the title's end (found by fuzz_rag_html) */
        char html[600] = "<title>";
        memset(html + 7, 'x', 254);
        strcpy(html + 7 + 254, " yy</title>");
        rag_doc d;
        REQUIRE(extract(RAG_FORMAT_HTML, html, strlen(html), 1 << 20, &d) == NULL);
        CHECK(strlen(d.title) == 254 && d.title[253] == 'x' && strncmp(d.text, d.title, 254) == 0);
        rag_doc_fini(&d);
    }
    /* the text limit */
    static const char big[] = "<p>aaaa bbbb cccc dddd</p>";
    rag_doc d;
    const char *no = extract(RAG_FORMAT_HTML, big, sizeof big - 1, 10, &d);
    CHECKF(no && strstr(no, "over the limit of 10 bytes"), "%s", no ? no : "indexed");
    CHECK(extract(RAG_FORMAT_HTML, big, sizeof big - 1, 19, &d) == NULL && d.len == 19);
    rag_doc_fini(&d);
    /* deep nesting costs no stack (the walk is iterative) */
    {
        const int depth = 20000;
        char *deep = malloc((size_t)depth * 5 + 16);
        REQUIRE(deep);
        size_t n = 0;
        // NOLINTBEGIN(bugprone-not-null-terminated-result): a byte buffer, its length in n
        for (int i = 0; i < depth; i++) memcpy(deep + n, "<div>", 5), n += 5;
        memcpy(deep + n, "deep", 4), n += 4;
        // NOLINTEND(bugprone-not-null-terminated-result)
        REQUIRE(extract(RAG_FORMAT_HTML, deep, n, 1 << 20, &d) == NULL);
        CHECK(strcmp(d.text, "deep") == 0 || d.len == 0); /* libxml2 may stop at its depth limit */
        rag_doc_fini(&d);
        free(deep);
    }
}

/* ---- PDF ------------------------------------------------------------------- */

typedef struct bytes {
    unsigned char *p;
    size_t n;
} bytes;

static cairo_status_t collect(void *user, const unsigned char *data, unsigned int len) {
    bytes *b = user;
    unsigned char *m = realloc(b->p, b->n + len);
    if (!m) return CAIRO_STATUS_NO_MEMORY;
    memcpy(m + b->n, data, len);
    b->p = m;
    b->n += len;
    return CAIRO_STATUS_SUCCESS;
}

static const char page1[] = "Zürich pumps are serviced every spring.";
static const char page2[] = "Second page: naïve café déjà vu, 20 °C.";

/* A PDF of the given pages (one line of text each; NULL: a filled rectangle only). */
static bytes make_pdf(const char *const *pages, int n) {
    bytes b = {0};
    cairo_surface_t *s = cairo_pdf_surface_create_for_stream(collect, &b, 595, 842);
    cairo_t *cr = cairo_create(s);
    for (int i = 0; i < n; i++) {
        if (pages[i]) {
            cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                                   CAIRO_FONT_WEIGHT_NORMAL);
            cairo_set_font_size(cr, 12);
            cairo_move_to(cr, 72, 100);
            cairo_show_text(cr, pages[i]);
        } else {
            cairo_rectangle(cr, 72, 72, 200, 100);
            cairo_fill(cr);
        }
        cairo_show_page(cr);
    }
    cairo_destroy(cr);
    cairo_surface_finish(s);
    REQUIRE(cairo_surface_status(s) == CAIRO_STATUS_SUCCESS);
    cairo_surface_destroy(s);
    return b;
}

static void check_skipped(const char *what, const void *data, size_t n, const char *reason) {
    rag_doc d;
    const char *no = extract(RAG_FORMAT_PDF, data, n, 1 << 20, &d);
    CHECKF(no && strstr(no, reason), "%s: %s (want \"%s\")", what, no ? no : "indexed", reason);
    if (!no) rag_doc_fini(&d);
}

/* A one-page PDF whose trailer names a standard security handler (RC4,
 * revision 2) whose /U does not match the empty password: a password is needed. */
static bytes make_encrypted(void) {
    static const char *const objs[] = {
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
        "<< /Filter /Standard /V 1 /R 2 /P -4 /O <0000000000000000000000000000000000000000"
        "000000000000000000000000> /U <1111111111111111111111111111111111111111111111111111"
        "111111111111> >>",
    };
    char *s = malloc(4096);
    REQUIRE(s);
    size_t off[4], n = (size_t)sprintf(s, "%%PDF-1.4\n");
    for (int i = 0; i < 4; i++) {
        off[i] = n;
        n += (size_t)sprintf(s + n, "%d 0 obj\n%s\nendobj\n", i + 1, objs[i]);
    }
    const size_t xref = n;
    n += (size_t)sprintf(s + n, "xref\n0 5\n0000000000 65535 f \n");
    for (int i = 0; i < 4; i++) n += (size_t)sprintf(s + n, "%010zu 00000 n \n", off[i]);
    n += (size_t)sprintf(s + n,
                         "trailer\n<< /Size 5 /Root 1 0 R /Encrypt 4 0 R /ID "
                         "[<0123456789abcdef0123456789abcdef> <0123456789abcdef0123456789abcdef>] "
                         ">>\nstartxref\n%zu\n%%%%EOF\n",
                         xref);
    return (bytes){(unsigned char *)s, n};
}

static void test_pdf(void) {
    const char *two[] = {page1, page2};
    bytes pdf = make_pdf(two, 2);
    rag_doc d;
    const char *no = extract(RAG_FORMAT_PDF, (const char *)pdf.p, pdf.n, 1 << 20, &d);
    CHECKF(!no, "skipped: %s", no ? no : "");
    if (!no) {
        CHECK(d.n_pages == 2 && d.page_start[0] == 0);
        CHECKF(d.n_pages == 2 && d.page_start[1] == sizeof page1 - 1 + 2 &&
                   strncmp(d.text, page1, sizeof page1 - 1) == 0 &&
                   memcmp(d.text + sizeof page1 - 1, "\n\n", 2) == 0 &&
                   strcmp(d.text + d.page_start[1], page2) == 0,
               "got [%s]", d.text);
        CHECK(d.len == strlen(d.text) && d.title[0] == '\0');
        rag_doc_fini(&d);
    }
    /* the page limit: at least 16 pages, else one per KiB of the text limit */
    {
        const char *many[17];
        for (int i = 0; i < 17; i++) many[i] = "p";
        bytes m = make_pdf(many, 17);
        no = extract(RAG_FORMAT_PDF, (const char *)m.p, m.n, 1 << 14, &d);
        CHECKF(no && strstr(no, "a PDF of 17 pages, over the limit of 16"), "%s", no ? no : "");
        REQUIRE(extract(RAG_FORMAT_PDF, (const char *)m.p, m.n, 17 << 10, &d) == NULL);
        CHECK(d.n_pages == 17);
        rag_doc_fini(&d);
        free(m.p);
    }
    no = extract(RAG_FORMAT_PDF, (const char *)pdf.p, pdf.n, 20, &d);
    CHECKF(no && strstr(no, "its text is over the limit of 20 bytes"), "%s", no ? no : "");

    const char *blank[] = {NULL, NULL};
    bytes rect = make_pdf(blank, 2);
    check_skipped("rectangle", rect.p, rect.n, "no text layer");
    check_skipped("truncated", pdf.p, 100, "not a readable PDF");
    check_skipped("header only", "%PDF-1.5\n", 9, "not a readable PDF");
    unsigned char noise[4096];
    unsigned long long seed = 47;
    for (size_t i = 0; i < sizeof noise; i++) noise[i] = (unsigned char)test_rand_u64(&seed);
    check_skipped("random bytes", noise, sizeof noise, "not a readable PDF");
    bytes enc = make_encrypted();
    check_skipped("encrypted", enc.p, enc.n, "an encrypted PDF (it needs a password)");
    /* every cut of the file: skipped with a reason or pages of text, never a crash */
    for (size_t cut = 0; cut < pdf.n; cut += pdf.n / 97 + 1) {
        char why[256];
        char *copy = malloc(cut + 1);
        REQUIRE(copy);
        memcpy(copy, pdf.p, cut);
        copy[cut] = '\0';
        no = rag_extract(RAG_FORMAT_PDF, copy, cut, 1 << 20, &d, why, sizeof why);
        CHECK(no ? strlen(no) > 0 : d.n_pages >= 1 && d.len > 0);
        if (!no) rag_doc_fini(&d);
        free(copy);
    }
    free(enc.p);
    free(rect.p);
    free(pdf.p);
}

/* ---- through the program --------------------------------------------------- */

/* The best hit's source ("report.pdf p. 1"), as best_hit last saw it. */
static char last_source[512];

/* The file name of the best hit for question ("" when none). */
static void best_hit(const char *question, char *out, size_t cap) {
    char cmd[1024], line[8192];
    snprintf(cmd, sizeof cmd, "'%s' rag query --json -k 1 --db '%s/idx.db' '%s'", HEARTH_BINARY,
             dir, question);
    FILE *p = popen(cmd, "r");
    REQUIRE(p);
    out[0] = '\0';
    while (fgets(line, sizeof line, p)) {
        cJSON *j = cJSON_Parse(line);
        const char *path = cJSON_GetStringValue(cJSON_GetObjectItem(j, "path"));
        const char *source = cJSON_GetStringValue(cJSON_GetObjectItem(j, "source"));
        if (path && !out[0]) {
            snprintf(out, cap, "%s", strrchr(path, '/') + 1);
            snprintf(last_source, sizeof last_source, "%s", source ? source : "(none)");
        }
        cJSON_Delete(j);
    }
    CHECK(pclose(p) == 0);
}

/* `hearth rag index` over docs/; its stderr into log. */
static int index_docs(const char *extra) {
    return test_sh("'%s' rag index --db '%s/idx.db' %s '%s/docs' > '%s/log' 2>&1", HEARTH_BINARY,
                   dir, extra, dir, dir);
}

static bool log_has(const char *s) {
    char path[512], buf[8192];
    snprintf(path, sizeof path, "%s/log", dir);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    const size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, s) != NULL;
}

/* The FTS title column of the chunks of files named like pattern. */
static void sql_titles(const char *pattern, char *out, size_t cap) {
    char db_path[512];
    snprintf(db_path, sizeof db_path, "%s/idx.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    out[0] = '\0';
    REQUIRE(sqlite3_open(db_path, &db) == SQLITE_OK);
    REQUIRE(sqlite3_prepare_v2(db,
                               "SELECT f.title FROM chunks c JOIN docs d ON d.id = c.doc_id JOIN "
                               "chunks_fts f ON f.rowid = c.id WHERE d.path LIKE ? ORDER BY c.ord",
                               -1, &st, NULL) == SQLITE_OK);
    sqlite3_bind_text(st, 1, pattern, -1, SQLITE_STATIC);
    size_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW && n < cap)
        n += (size_t)snprintf(out + n, cap - n, "%s|", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void sql_exec(const char *sql) {
    char db_path[512];
    snprintf(db_path, sizeof db_path, "%s/idx.db", dir);
    sqlite3 *db = NULL;
    REQUIRE(sqlite3_open(db_path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
}

static void test_cli(void) {
    char path[512], got[1024];
    snprintf(path, sizeof path, "%s/docs", dir);
    REQUIRE(mkdir(path, 0700) == 0);
    static const char txt[] = "Notes about the office coffee machine and its descaling.\n";
    static const char html[] = "<html><head><title>Handbook</title><script>var quokka = 1;"
                               "</script></head><body><h1>Travel</h1><p>Expenses for the "
                               "&quot;platypus&quot; conference are refunded in April.</p>"
                               "</body></html>";
    write_file("docs/notes.txt", txt, sizeof txt - 1);
    write_file("docs/handbook.html", html, sizeof html - 1);
    const char *pages[] = {"The first page is about invoices.",
                           "Page two: the wombat budget rises by ten percent."};
    bytes pdf = make_pdf(pages, 2);
    write_file("docs/report.pdf", pdf.p, pdf.n);
    write_file("docs/broken.pdf", pdf.p, 100);

    CHECK(index_docs("") == 0);
    CHECKF(log_has("3 added, 0 updated, 0 unchanged, 0 removed, 1 skipped"), "index log");
    CHECK(log_has("broken.pdf: not a readable PDF"));
    best_hit("wombat budget", got, sizeof got);
    CHECKF(strcmp(got, "report.pdf") == 0, "wombat: %s", got);
    CHECKF(!strncmp(last_source, "report.pdf p", 12), "wombat's source: %s", last_source);
    best_hit("platypus conference", got, sizeof got);
    CHECKF(strcmp(got, "handbook.html") == 0, "platypus: %s", got);
    CHECKF(!strncmp(last_source, "handbook.html - ", 16), "platypus's source: %s", last_source);
    best_hit("quokka", got, sizeof got); /* script text is not indexed */
    CHECKF(got[0] == '\0', "quokka: %s", got);
    best_hit("descaling", got, sizeof got);
    CHECKF(strcmp(got, "notes.txt") == 0, "descaling: %s", got);
    sql_titles("%report.pdf", got, sizeof got);
    CHECKF(strcmp(got, "report.pdf pp. 1-2|") == 0, "pdf titles: %s", got);
    sql_titles("%handbook.html", got, sizeof got);
    CHECKF(strcmp(got, "handbook.html - Handbook|") == 0, "html titles: %s", got);

    /* unchanged files are not read again; a touched one is read, not re-indexed */
    CHECK(index_docs("") == 0);
    CHECK(log_has("0 added, 0 updated, 3 unchanged, 0 removed, 1 skipped; 0 chunks"));
    snprintf(path, sizeof path, "%s/docs/report.pdf", dir);
    CHECK(utimensat(AT_FDCWD, path, NULL, 0) == 0);
    CHECK(index_docs("") == 0);
    CHECK(log_has("0 added, 0 updated, 3 unchanged, 0 removed, 1 skipped; 0 chunks"));
    static const char html2[] = "<p>Expenses for the echidna summit.</p>";
    write_file("docs/handbook.html", html2, sizeof html2 - 1);
    CHECK(index_docs("") == 0);
    CHECK(log_has("0 added, 1 updated, 2 unchanged, 0 removed, 1 skipped; 1 chunks"));
    best_hit("echidna", got, sizeof got);
    CHECK(strcmp(got, "handbook.html") == 0);
    best_hit("platypus", got, sizeof got);
    CHECK(got[0] == '\0');

    /* an index written before extraction: its HTML and PDF files are read again once */
    sql_exec("DELETE FROM meta WHERE key = 'extract_version'; UPDATE docs SET hash = 0");
    CHECK(index_docs("") == 0);
    CHECKF(log_has("0 added, 2 updated, 1 unchanged, 0 removed, 1 skipped"), "re-extract");
    CHECK(index_docs("") == 0);
    CHECK(log_has("0 added, 0 updated, 3 unchanged, 0 removed, 1 skipped"));

    /* --prune forgets a deleted PDF */
    CHECK(unlink(path) == 0);
    CHECK(index_docs("--prune") == 0);
    CHECK(log_has("0 added, 0 updated, 2 unchanged, 1 removed, 1 skipped"));
    best_hit("wombat", got, sizeof got);
    CHECK(got[0] == '\0');
    free(pdf.p);
}

int main(void) {
    REQUIRE(mkdtemp(dir));
    test_format();
    test_html();
    test_pdf();
    test_cli();
    /* cairo keeps the fonts it chose (fontconfig patterns) in caches that
     * LeakSanitizer would report at exit: empty them. */
    cairo_debug_reset_static_data();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (test_failures == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_done("test_rag_extract");
}
