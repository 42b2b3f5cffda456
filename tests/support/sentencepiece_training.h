#pragma once
// Trains a small SentencePiece model with libsentencepiece, so tests can make checkpoints that
// ship only a `tokenizer.model`; and names the byte tokens of SentencePiece-style vocabularies.

#include <cstdio>
#include <filesystem>
#include <string>

#include <sentencepiece_trainer.h>

#include "test_fixtures.h"

namespace mdbf::test {

/// The byte-fallback token of byte `b`, e.g. "<0x0A>" (upper-case hex, as SentencePiece writes it).
inline std::string byteToken(int b)
{
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b & 0xFF);
    return name;
}

/// Trains a BPE model of `vocabSize` pieces on `corpus` and writes it to `modelPath` (which must
/// end in ".model"). Returns the library's status message, empty on success.
inline std::string trainSentencePieceBpe(const std::string& corpus, int vocabSize, const std::filesystem::path& modelPath)
{
    const std::filesystem::path input = modelPath.parent_path() / "spm-corpus.txt";
    writeTextFile(input, corpus);
    std::string prefix = modelPath.string();
    prefix.resize(prefix.size() - std::string(".model").size());
    const std::string args = "--input=" + input.string() + " --model_prefix=" + prefix +
                             " --model_type=bpe --vocab_size=" + std::to_string(vocabSize) +
                             " --character_coverage=1.0 --byte_fallback=true --num_threads=1 --minloglevel=2";
    const auto status = sentencepiece::SentencePieceTrainer::Train(args);
    std::filesystem::remove(input);
    return status.ok() ? std::string() : status.ToString();
}

}  // namespace mdbf::test
