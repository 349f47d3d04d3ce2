/*
 * tidy_models.h - what clang-tidy's static analyzer should know about the
 * libraries it cannot see into. scripts/lint.sh puts it in front of every
 * file it checks (-include); no build uses it.
 *
 * cJSON: cJSON_IsString(NULL) and the other type tests are false, and a
 * string item has its valuestring. Without this the analyzer takes every
 * `cJSON_IsString(v) ? v->valuestring : NULL` for a possible NULL
 * dereference. The macros test what the functions test (cJSON.c), and only
 * under the analyzer.
 */
#ifndef HEARTH_TIDY_MODELS_H
#define HEARTH_TIDY_MODELS_H
#ifdef __clang_analyzer__

#include <cjson/cJSON.h>

#define cJSON_IsString(x)                                                                          \
    ((x) != NULL && ((x)->type & 0xFF) == cJSON_String && (x)->valuestring != NULL)
#define cJSON_IsObject(x) ((x) != NULL && ((x)->type & 0xFF) == cJSON_Object)
#define cJSON_IsArray(x)  ((x) != NULL && ((x)->type & 0xFF) == cJSON_Array)
#define cJSON_IsNumber(x) ((x) != NULL && ((x)->type & 0xFF) == cJSON_Number)

#endif
#endif
