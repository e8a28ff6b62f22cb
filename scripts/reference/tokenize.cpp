// Prints llama.cpp's ids for each case of a tokenizer-suite input, one line per
// case in input order, in the format of llama.cpp's own `.out` files:
// `tokenize VOCAB.gguf CASES.inp [--add-special] [--parse-special] > OUT`.
// Cases are split and tokenized as llama.cpp's tests/test-tokenizer-0.cpp
// does: on "\n__ggml_vocab_test__\n", from the vocabulary alone, and with
// add_special = false and parse_special = false unless the flags say
// otherwise. Built by build.sh against the llama.cpp that llama-cpp-python
// vendors.
#include "llama.h"
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

int main(int argc, char ** argv) {
    bool add_special = false;
    bool parse_special = false;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--add-special")) {
            add_special = true;
        } else if (!strcmp(argv[i], "--parse-special")) {
            parse_special = true;
        } else {
            argc = 0;
        }
    }
    if (argc < 3) {
        fprintf(stderr, "usage: %s VOCAB.gguf CASES.inp [--add-special] [--parse-special]\n", argv[0]);
        return 2;
    }
    llama_log_set([](ggml_log_level, const char *, void *) {}, nullptr);
    llama_backend_init();
    auto mp = llama_model_default_params();
    mp.vocab_only = true;
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
    const llama_vocab * vocab = llama_model_get_vocab(model);

    std::ifstream in(argv[2], std::ios::binary);
    if (!in) {
        fprintf(stderr, "cannot read %s\n", argv[2]);
        return 1;
    }
    const std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> cases;
    for (size_t pos = 0; pos < raw.size();) {
        const size_t next = raw.find(sep, pos);
        if (next == std::string::npos) {
            cases.push_back(raw.substr(pos));
            break;
        }
        cases.push_back(raw.substr(pos, next - pos));
        pos = next + sep.size();
    }

    for (const std::string & text : cases) {
        // As common_tokenize: ask once, and again with the size it asks for.
        std::vector<llama_token> ids(text.size() + 2);
        int n = llama_tokenize(vocab, text.data(), text.size(), ids.data(), ids.size(), add_special, parse_special);
        if (n < 0) {
            ids.resize(-n);
            n = llama_tokenize(vocab, text.data(), text.size(), ids.data(), ids.size(), add_special, parse_special);
        }
        for (int i = 0; i < n; i++) printf(" %d", ids[i]);
        printf("\n");
    }
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
