/* The compose_type names (spec COMPOSITION.md §2), options and cache settings. */
#include <pthread.h>
#include <string.h>

#include "common/status.h"
#include "compose/compose.h"

static const struct {
    const char *name;
    cl_compose_kv kv;
    cl_compose_ssm ssm;
} types[] = {
    {"full_kv_only", CL_COMPOSE_KV_FULL, CL_COMPOSE_SSM_KV_ONLY},
    {"full_kv_fuse_ssm", CL_COMPOSE_KV_FULL, CL_COMPOSE_SSM_FUSE},
    {"full_kv_soup_ssm", CL_COMPOSE_KV_FULL, CL_COMPOSE_SSM_SOUP},
    {"full_kv_caso_ssm", CL_COMPOSE_KV_FULL, CL_COMPOSE_SSM_CASO},
    {"concat_kv_only", CL_COMPOSE_KV_CONCAT, CL_COMPOSE_SSM_KV_ONLY},
    {"concat_kv_fuse_ssm", CL_COMPOSE_KV_CONCAT, CL_COMPOSE_SSM_FUSE},
    {"concat_kv_soup_ssm", CL_COMPOSE_KV_CONCAT, CL_COMPOSE_SSM_SOUP},
    {"concat_kv_caso_ssm", CL_COMPOSE_KV_CONCAT, CL_COMPOSE_SSM_CASO},
    {"sw_kv_only", CL_COMPOSE_KV_SW, CL_COMPOSE_SSM_KV_ONLY},
    {"sw_fuse_ssm", CL_COMPOSE_KV_SW, CL_COMPOSE_SSM_FUSE},
    {"sw_soup_ssm", CL_COMPOSE_KV_SW, CL_COMPOSE_SSM_SOUP},
    {"sw_caso_ssm", CL_COMPOSE_KV_SW, CL_COMPOSE_SSM_CASO},
};

#define N_TYPES (sizeof types / sizeof types[0])

void cl_compose_opts_default(cl_compose_opts *o)
{
    memset(o, 0, sizeof *o);
    o->kv = CL_COMPOSE_KV_CONCAT;
    o->ssm = CL_COMPOSE_SSM_SOUP;
    o->num_chunks = 2;
    o->min_prepend = 1;
    o->pad_id = CL_COMPOSE_DEFAULT_PAD;
}

static char names_list[512];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void build_names(void)
{
    for (size_t i = 0; i < N_TYPES; i++) {
        strncat(names_list, types[i].name, sizeof names_list - strlen(names_list) - 1);
        if (i + 1 < N_TYPES)
            strncat(names_list, ", ", sizeof names_list - strlen(names_list) - 1);
    }
}

const char *cl_compose_type_names(void)
{
    pthread_once(&names_once, build_names);
    return names_list;
}

int cl_compose_type_parse(const char *name, cl_compose_kv *kv, cl_compose_ssm *ssm)
{
    for (size_t i = 0; name && i < N_TYPES; i++)
        if (!strcmp(name, types[i].name)) {
            *kv = types[i].kv;
            *ssm = types[i].ssm;
            return CL_OK;
        }
    return cl_err(CL_ERR_ARG, "unknown compose type '%s' (one of: %s)", name ? name : "(none)",
                  cl_compose_type_names());
}

const char *cl_compose_type_name(cl_compose_kv kv, cl_compose_ssm ssm)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (types[i].kv == kv && types[i].ssm == ssm)
            return types[i].name;
    return NULL;
}

int cl_compose_needs_transition(const cl_model *m, cl_compose_ssm ssm)
{
    if (ssm != CL_COMPOSE_SSM_FUSE && ssm != CL_COMPOSE_SSM_CASO)
        return 0;
    for (int64_t l = 0; l < m->cfg->num_layers; l++)
        if (m->cfg->layer_types[l] == CL_LAYER_GDN)
            return 1;
    return 0;
}

void cl_compose_cache_opts(const cl_model *m, const cl_compose_opts *o, cl_cache_opts *co)
{
    cl_cache_opts_for_model(m, co);
    if (cl_compose_needs_transition(m, o->ssm))
        co->track_transition = 1;
}
