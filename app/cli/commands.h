#pragma once
// One registration function per subcommand, each defined in its own <name>_command.cpp.

#include "cli_common.h"

namespace mdbf::cli {

Command registerInspectCommand(CLI::App& root);
Command registerTokenizeCommand(CLI::App& root);
Command registerPplCommand(CLI::App& root);
Command registerFactorizeCommand(CLI::App& root);
Command registerQuantizeCommand(CLI::App& root);
Command registerPlanCommand(CLI::App& root);
Command registerStudyCommand(CLI::App& root);
Command registerGenerateCommand(CLI::App& root);
Command registerBenchCommand(CLI::App& root);
Command registerSynthCommand(CLI::App& root);

}  // namespace mdbf::cli
