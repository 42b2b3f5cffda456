#pragma once
// The check every hostile-input test makes: an mdbf::Error, one line, bounded, naming what it must.

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mdbf/base/error.h"

namespace mdbf::test {

/// Runs `fn`, expecting an mdbf::Error whose message contains every one of `needles`.
template <typename Fn>
void expectErrorContaining(Fn&& fn, const std::vector<std::string>& needles)
{
    try {
        fn();
    } catch (const mdbf::Error& e) {
        const std::string message = e.what();
        for (const std::string& needle : needles) {
            EXPECT_NE(message.find(needle), std::string::npos) << "message lacks '" << needle << "': " << message;
        }
        EXPECT_EQ(message.find('\n'), std::string::npos) << "message is not one line: " << message;
        EXPECT_LE(message.size(), mdbf::kMaxMessageBytes + 8) << "message is not bounded";
        return;
    }
    ADD_FAILURE() << "no mdbf::Error thrown (expected one mentioning '" << (needles.empty() ? "" : needles.back())
                  << "')";
}

}  // namespace mdbf::test
