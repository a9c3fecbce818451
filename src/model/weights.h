/* weights.h - binds every tensor of spec/MODEL.md §2 by name, with its shape
 * checked against the config. Tensors stay in the safetensors mapping (no copy);
 * backends convert them to their compute type when they upload them.
 */
#ifndef CL_WEIGHTS_H
#define CL_WEIGHTS_H

#include "model/config.h"
#include "model/safetensors.h"

/* Per-layer weight roles. Which roles a layer has depends on its type. */
typedef enum {
    CL_W_IN_NORM = 0, /* input_layernorm [Dm] */
    CL_W_POST_NORM,   /* post_attention_layernorm [Dm] */
    CL_W_MLP_GATE,    /* [I, Dm] */
    CL_W_MLP_UP,      /* [I, Dm] */
    CL_W_MLP_DOWN,    /* [Dm, I] */
    CL_W_Q,           /* q_proj [Hq*D, Dm] (attention, SWA, GDN, GKA) */
    CL_W_K,           /* k_proj [Hkv*D, Dm] */
    CL_W_V,           /* v_proj [Hkv*D, Dm] */
    CL_W_O,           /* o_proj / out_proj [Dm, Hq*D] */
    CL_W_Q_NORM,      /* attention q_norm [D] */
    CL_W_K_NORM,      /* attention k_norm [D] */
    CL_W_M2_IN,       /* Mamba2 in_proj [2*d_inner + 2*d_xb + H, Dm] */
    CL_W_CONV,        /* Mamba2 conv1d.weight [conv_dim, 1, W] */
    CL_W_CONV_BIAS,   /* Mamba2 conv1d.bias [conv_dim] */
    CL_W_DT_BIAS,     /* [H] */
    CL_W_A_LOG,       /* [H] */
    CL_W_M2_D,        /* Mamba2 D [H] */
    CL_W_M2_NORM,     /* Mamba2 gated norm [d_inner] */
    CL_W_B_NORM,      /* Mamba2 B_norm [D] */
    CL_W_C_NORM,      /* Mamba2 C_norm [D] */
    CL_W_Q_CONV,      /* GDN/GKA q_conv1d [Hq*D, 1, W] */
    CL_W_K_CONV,      /* [Hkv*D, 1, W] */
    CL_W_V_CONV,      /* [Hkv*D, 1, W] */
    CL_W_BETA,        /* b_proj [H, Dm] */
    CL_W_BETA_BIAS,   /* GKA b_proj.bias [H] */
    CL_W_DECAY,       /* GKA a_proj / GDN gk_proj [H, Dm] */
    CL_W_ALPHA,       /* GKA alpha_proj [H, Dm] */
    CL_W_ALPHA_BIAS,  /* GKA alpha_proj.bias [H] */
    CL_W_GATE,        /* GDN/GKA g_proj [H*D, Dm] */
    CL_W_O_NORM,      /* GDN/GKA o_norm [D] */
    CL_W_ROLE_COUNT
} cl_wrole;

typedef struct {
    const cl_st_tensor *t[CL_W_ROLE_COUNT]; /* NULL where the layer has no such role */
} cl_layer_weights;

typedef struct {
    const cl_st_tensor *embed;    /* [V, Dm] */
    const cl_st_tensor *norm;     /* [Dm] */
    const cl_st_tensor *lm_head;  /* [V, Dm]; == embed when tied */
    cl_layer_weights *layers;     /* [num_layers] */
    int64_t n_params;             /* elements over all bound tensors (tied counted once) */
    int64_t n_unused;             /* tensors in the checkpoint that nothing binds */
} cl_weights;

/* 1 for the roles that are projection matrices (uploaded in the backend's matmul
 * dtype); 0 for vectors, norms and conv weights. */
int cl_wrole_is_matrix(cl_wrole r);

/* Binds and checks every required tensor. Errors name the file and tensor. */
int cl_weights_bind(const cl_config *cfg, const cl_safetensors *st, cl_weights *w);
void cl_weights_free(cl_weights *w);
/* Role name for messages ("q_proj", ...). */
const char *cl_wrole_name(cl_wrole r);
/* Full tensor name of a role in layer `layer` (buffer of n bytes); "" if the type lacks it. */
void cl_weights_tensor_name(const cl_config *cfg, int64_t layer, cl_wrole r, char *buf, size_t n);
/* Expected shape of a role (returns ndim, 0 if the layer type lacks it). */
int cl_weights_expected_shape(const cl_config *cfg, cl_layer_type t, cl_wrole r, int64_t *shape);

#endif
