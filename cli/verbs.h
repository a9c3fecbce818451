/* verbs.h - one function per CLI verb, each in its own file cli/<verb>.c.
 * Each takes the argv starting at the verb name and returns the exit code. */
#ifndef CLI_VERBS_H
#define CLI_VERBS_H

int cmd_info(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_template(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_compose(int argc, char **argv);
int cmd_ingest(int argc, char **argv);
int cmd_query(int argc, char **argv);
int cmd_store(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tensors(int argc, char **argv);

#endif
