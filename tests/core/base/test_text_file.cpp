#include <fstream>

#include <gtest/gtest.h>

#include "mdbf/base/error.h"
#include "mdbf/base/text_file.h"
#include "test_fixtures.h"

namespace mdbf {
namespace {

TEST(Utf8, AcceptsValidText)
{
    EXPECT_EQ(findInvalidUtf8(""), std::string::npos);
    EXPECT_EQ(findInvalidUtf8("plain ascii\n"), std::string::npos);
    EXPECT_EQ(findInvalidUtf8("caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x99\x82"), std::string::npos);
}

TEST(Utf8, FindsTheFirstInvalidSequence)
{
    EXPECT_EQ(findInvalidUtf8("ab\xff"), 2u);                 // never valid
    EXPECT_EQ(findInvalidUtf8("a\xc3"), 1u);                  // truncated
    EXPECT_EQ(findInvalidUtf8("a\xc3(b"), 1u);                // bad continuation
    EXPECT_EQ(findInvalidUtf8("\xc0\xaf"), 0u);               // overlong '/'
    EXPECT_EQ(findInvalidUtf8("x\xed\xa0\x80"), 1u);          // UTF-16 surrogate
    EXPECT_EQ(findInvalidUtf8("\xf4\x90\x80\x80"), 0u);       // past U+10FFFF
}

TEST(TextFile, ReadsRawBytesWithoutNewlineConversion)
{
    test::TempDir dir;
    const std::string bytes = "line one\r\nline two\n\n  trailing  ";
    std::ofstream(dir / "t.txt", std::ios::binary) << bytes;
    EXPECT_EQ(readUtf8File(dir / "t.txt"), bytes);
}

TEST(TextFile, InvalidUtf8NamesFileAndOffset)
{
    test::TempDir dir;
    std::ofstream(dir / "bad.txt", std::ios::binary) << "hello \xfe world";
    try {
        (void)readUtf8File(dir / "bad.txt");
        FAIL() << "expected FormatError";
    } catch (const FormatError& e) {
        EXPECT_NE(std::string(e.what()).find("bad.txt"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("offset 6"), std::string::npos) << e.what();
    }
}

TEST(TextFile, MissingFileAndDirectoryAreIoErrors)
{
    test::TempDir dir;
    EXPECT_THROW((void)readUtf8File(dir / "missing.txt"), IoError);
    EXPECT_THROW((void)readUtf8File(dir.path()), IoError);
}

}  // namespace
}  // namespace mdbf
