#include "mdbf/factor/factor_result.h"

#include <utility>

#include "mdbf/base/error.h"

namespace mdbf::factor {

namespace {

// Each objective with its name: the one table both directions read.
constexpr std::pair<Objective, std::string_view> kObjectiveNames[] = {
    {Objective::Plain, "plain"}, {Objective::DiagonalWeighted, "diag"}, {Objective::Gram, "gram"}};

}  // namespace

std::string_view objectiveName(Objective objective)
{
    for (const auto& [value, name] : kObjectiveNames)
        if (value == objective) return name;
    return "plain";
}

Objective parseObjective(std::string_view text)
{
    for (const auto& [value, name] : kObjectiveNames)
        if (name == text) return value;
    throw InvalidArgument("unknown objective '" + std::string(text) + "' (expected plain, diag or gram)");
}

std::string_view terminationName(Termination termination)
{
    switch (termination) {
    case Termination::Converged: return "converged";
    case Termination::IterationLimit: return "iteration_limit";
    case Termination::Cancelled: return "cancelled";
    case Termination::Failed: return "failed";
    }
    return "failed";
}

std::string FactorResult::errorLabel() const
{
    return "rel_error (" + std::string(objectiveName(objective)) + ")";
}

}  // namespace mdbf::factor
