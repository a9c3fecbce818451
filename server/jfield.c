#include "jfield.h"

#include <math.h>

const cJSON *jf_get(const cJSON *o, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    return j && !cJSON_IsNull(j) ? j : NULL;
}

int jf_num(const cJSON *o, const char *key, double lo, double hi, double *out, int *given,
           srv_error *e)
{
    const cJSON *j = jf_get(o, key);
    if (given)
        *given = j != NULL;
    if (!j)
        return 0;
    if (!cJSON_IsNumber(j))
        return srv_fail(e, 400, key, "%s: expected a number, got %s", key, srv_json_type(j));
    double v = j->valuedouble;
    if (!isfinite(v) || v < lo || v > hi)
        return srv_fail(e, 400, key, "%s: %g is out of range [%g, %g]", key, v, lo, hi);
    *out = v;
    return 0;
}

int jf_int(const cJSON *o, const char *key, int64_t lo, int64_t hi, int64_t *out, int *given,
           srv_error *e)
{
    const cJSON *j = jf_get(o, key);
    if (given)
        *given = j != NULL;
    if (!j)
        return 0;
    if (!cJSON_IsNumber(j))
        return srv_fail(e, 400, key, "%s: expected an integer, got %s", key, srv_json_type(j));
    double v = j->valuedouble;
    if (!isfinite(v) || v != floor(v))
        return srv_fail(e, 400, key, "%s: expected an integer, got %g", key, v);
    if (v < (double)lo || v > (double)hi)
        return srv_fail(e, 400, key, "%s: %.0f is out of range [%lld, %lld]", key, v,
                        (long long)lo, (long long)hi);
    *out = (int64_t)v;
    return 0;
}

int jf_bool(const cJSON *o, const char *key, int *out, srv_error *e)
{
    const cJSON *j = jf_get(o, key);
    if (!j)
        return 0;
    if (!cJSON_IsBool(j))
        return srv_fail(e, 400, key, "%s: expected a boolean, got %s", key, srv_json_type(j));
    *out = cJSON_IsTrue(j);
    return 0;
}

int jf_str(const cJSON *o, const char *key, const char **out, srv_error *e)
{
    const cJSON *j = jf_get(o, key);
    if (!j)
        return 0;
    if (!cJSON_IsString(j))
        return srv_fail(e, 400, key, "%s: expected a string, got %s", key, srv_json_type(j));
    *out = j->valuestring;
    return 0;
}

