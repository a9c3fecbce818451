/* session.h - generation with prefix reuse (public: cl_session_generate and its opts
 * and stats in collage.h): restore the longest stored prefix of the prompt, prefill
 * the rest (capturing snapshots where later requests can resume: every N blocks if
 * asked, and one token before the end of the prompt, so the same prompt resumes
 * there), generate, and store the new KV blocks plus the snapshots, including one at
 * the end of prompt + answer so that the next turn of a conversation resumes after
 * the whole answer. */
#ifndef CL_SESSION_H
#define CL_SESSION_H

#include "collage.h"
#include "engine/generate.h"
#include "engine/prefix.h"

#endif
