/*
 * rag_extract_html.c - the visible text of an HTML page, through libxml2's
 * HTML parser (recovering from broken markup, no network, the declared
 * charset converted to UTF-8; the HTML parser knows only HTML's own
 * entities, so no external entity is ever loaded).
 *
 * What a reader sees is kept: the <title> as the first paragraph (and as
 * doc->title), then the body's text in document order. script, style,
 * noscript, template, svg, iframe, head and elements with the hidden
 * attribute are dropped, as are comments. Block elements become breaks so
 * that the chunker still finds paragraphs: a blank line around p, div,
 * h1-h6, section, table, pre, ...; a newline at br, li, tr, dt, dd; a space
 * between table cells. Outside <pre> white space (and U+00A0) collapses to
 * one space; inside it is kept. The tree is walked without recursion, so a
 * deep document costs no stack.
 */
#include "rag_impl.h"

#include "core/core.h"

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A break between two pieces of text; a stronger one wins. */
enum brk { BRK_NONE, BRK_SPACE, BRK_LINE, BRK_PARA };

typedef struct walker {
    rag_text_buf b;
    enum brk pending;
    int pre_depth;
    bool pre_start; /* the next text opens a <pre>: its first newline is not content */
} walker;

static const char *const dropped[] = {"script", "style", "noscript", "template",
                                      "head",   "svg",   "iframe",   "title"};
static const char *const paragraphs[] = {
    "p",      "div",     "section", "article", "header", "footer",    "nav",        "aside",
    "main",   "h1",      "h2",      "h3",      "h4",     "h5",        "h6",         "hgroup",
    "pre",    "ul",      "ol",      "dl",      "table",  "form",      "fieldset",   "legend",
    "figure", "address", "hr",      "details", "dialog", "summary",   "figcaption", "center",
    "tbody",  "thead",   "tfoot",   "menu",    "body",   "blockquote"};
static const char *const lines[] = {"br", "li", "tr", "dt", "dd", "caption", "option"};
static const char *const spaces[] = {"td", "th"};

static bool in(const char *name, const char *const *set, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, set[i]) == 0) return true;
    return false;
}
#define IN(name, set) in((name), (set), sizeof(set) / sizeof *(set))

static enum brk break_of(const char *name) {
    return IN(name, paragraphs) ? BRK_PARA
           : IN(name, lines)    ? BRK_LINE
           : IN(name, spaces)   ? BRK_SPACE
                                : BRK_NONE;
}

static bool is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static void set_break(walker *w, enum brk k) {
    if (k > w->pending) w->pending = k;
}

/* Writes the pending break, unless nothing precedes it. */
static void flush_break(walker *w) {
    static const char *const sep[] = {"", " ", "\n", "\n\n"};
    if (w->b.n && w->pending != BRK_NONE) {
        if (w->pending >= BRK_LINE) rag_text_trim_end(&w->b); /* a <pre>'s trailing blanks */
        rag_text_put(&w->b, sep[w->pending], strlen(sep[w->pending]));
    }
    w->pending = BRK_NONE;
}

/* Text outside <pre>: runs of white space (U+00A0 too) become a pending space. */
static void put_collapsed(walker *w, const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (is_space((unsigned char)s[i])) {
            set_break(w, BRK_SPACE);
            i++;
        } else if ((unsigned char)s[i] == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] == 0xA0) {
            set_break(w, BRK_SPACE);
            i += 2;
        } else {
            size_t j = i;
            while (j < n && !is_space((unsigned char)s[j]) &&
                   !((unsigned char)s[j] == 0xC2 && j + 1 < n && (unsigned char)s[j + 1] == 0xA0))
                j++;
            flush_break(w);
            rag_text_put(&w->b, s + i, j - i);
            i = j;
        }
    }
}

/* Text inside <pre>: as it is, U+00A0 as a space. */
static void put_verbatim(walker *w, const char *s, size_t n) {
    if (w->pre_start) {
        w->pre_start = false;
        if (n && s[0] == '\r') s++, n--;
        if (n && s[0] == '\n') s++, n--;
    }
    if (!n) return;
    flush_break(w);
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n &&
               !((unsigned char)s[j] == 0xC2 && j + 1 < n && (unsigned char)s[j + 1] == 0xA0))
            j++;
        rag_text_put(&w->b, s + i, j - i);
        if (j < n) rag_text_put(&w->b, " ", 1), j += 2;
        i = j;
    }
}

static bool is_element(const xmlNode *n, const char *name) {
    return n->type == XML_ELEMENT_NODE && n->name && strcmp((const char *)n->name, name) == 0;
}

static bool dropped_element(const xmlNode *n) {
    return IN((const char *)n->name, dropped) || xmlHasProp(n, (const xmlChar *)"hidden");
}

/* The next node after n's subtree, in document order; NULL past top's. */
static const xmlNode *after(const xmlNode *n, const xmlNode *top) {
    while (n && n != top && !n->next) n = n->parent;
    return !n || n == top ? NULL : n->next;
}

/* The first <title> anywhere (broken pages put it in the body). */
static const xmlNode *find_title(const xmlDoc *doc) {
    const xmlNode *top = (const xmlNode *)doc;
    const xmlNode *n = doc->children;
    while (n) {
        if (is_element(n, "title")) return n;
        n = n->type == XML_ELEMENT_NODE && n->children && !is_element(n, "script") &&
                    !is_element(n, "style")
                ? n->children
                : after(n, top);
    }
    return NULL;
}

/* doc->title: the title's text with white space collapsed, cut at a
 * character boundary to fit. Also written as the text's first paragraph. */
static void take_title(walker *w, const xmlDoc *doc, rag_doc *out) {
    const xmlNode *t = find_title(doc);
    xmlChar *s = t ? xmlNodeGetContent(t) : NULL;
    if (!s) return;
    walker tw = {.b = {.max = 4096}}; /* an unclosed <title> can swallow the page */
    put_collapsed(&tw, (const char *)s, strlen((const char *)s));
    xmlFree(s);
    size_t n = tw.b.n;
    if (n >= sizeof out->title) {
        n = sizeof out->title - 1;
        while (n && ((unsigned char)tw.b.s[n] & 0xC0) == 0x80) n--; /* s[n] starts a character */
        while (n && tw.b.s[n - 1] == ' ') n--;                      /* the cut fell after a word */
    }
    if (n) memcpy(out->title, tw.b.s, n);
    out->title[n] = '\0';
    free(tw.b.s);
    put_collapsed(w, out->title, n);
    set_break(w, BRK_PARA);
}

/* Enters element n: returns whether its children are to be walked. */
static bool enter(walker *w, const xmlNode *n) {
    if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
        const char *s = (const char *)n->content;
        if (s) (w->pre_depth ? put_verbatim : put_collapsed)(w, s, strlen(s));
        return false;
    }
    if (n->type != XML_ELEMENT_NODE || !n->name || dropped_element(n)) return false;
    set_break(w, break_of((const char *)n->name));
    if (is_element(n, "pre")) w->pre_depth++, w->pre_start = true;
    return n->children != NULL;
}

static void leave(walker *w, const xmlNode *n) {
    if (n->type != XML_ELEMENT_NODE || !n->name) return;
    if (is_element(n, "pre") && w->pre_depth) w->pre_depth--, w->pre_start = false;
    set_break(w, break_of((const char *)n->name));
}

static void walk(walker *w, const xmlDoc *doc) {
    const xmlNode *top = (const xmlNode *)doc;
    const xmlNode *n = doc->children;
    while (n && !w->b.over && !w->b.nomem) {
        if (enter(w, n)) {
            n = n->children;
            continue;
        }
        if (n->type == XML_ELEMENT_NODE && n->name && !dropped_element(n)) leave(w, n);
        while (n && n != top && !n->next) { /* climb, closing what was entered */
            n = n->parent;
            if (n && n != top) leave(w, n);
        }
        n = !n || n == top ? NULL : n->next;
    }
}

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

/* libxml2 reports some problems through its generic handler (stderr by
 * default); the library prints nothing, so they go here for the call. */
static void quiet(void *ctx, const char *msg, ...) {
    (void)ctx;
    (void)msg;
}

const char *rag_extract_html(const char *data, size_t n, size_t max_text_bytes, rag_doc *doc,
                             char *why, size_t cap) {
    if (n > INT_MAX) return "too large for the HTML parser";
    pthread_once(&xml_once, xmlInitParser);
    xmlGenericErrorFunc old = xmlGenericError;
    void *old_ctx = xmlGenericErrorContext;
    xmlSetGenericErrorFunc(NULL, quiet);
    htmlDocPtr d = htmlReadMemory(data, (int)n, NULL, NULL,
                                  HTML_PARSE_RECOVER | HTML_PARSE_NONET | HTML_PARSE_NOERROR |
                                      HTML_PARSE_NOWARNING | HTML_PARSE_COMPACT);
    xmlSetGenericErrorFunc(old_ctx, old);
    if (!d && n) return "HTML the parser could not read (out of memory?)";
    walker w = {.b = {.max = max_text_bytes}};
    if (d) { /* NULL for an empty file: empty text */
        take_title(&w, d, doc);
        walk(&w, d);
        xmlFreeDoc(d);
    }
    rag_text_trim_end(&w.b);
    const char *no = NULL;
    size_t bad = 0;
    if (w.b.nomem) {
        no = "out of memory extracting its text";
    } else if (w.b.over) {
        snprintf(why, cap, "its text is over the limit of %zu bytes", max_text_bytes);
        no = why;
    } else if (w.b.n && (memchr(w.b.s, '\0', w.b.n) || !hr_utf8_valid(w.b.s, w.b.n, &bad))) {
        no = "HTML whose text is not UTF-8 after conversion"; /* libxml2 converts; a guard */
    }
    if (no) {
        free(w.b.s);
        doc->title[0] = '\0';
        return no;
    }
    if (!w.b.s && !(w.b.s = calloc(1, 1))) return "out of memory extracting its text";
    doc->text = w.b.s;
    doc->len = w.b.n;
    return NULL;
}
