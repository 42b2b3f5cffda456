#include "mdbf/factor/factor_result.h"

#include "mdbf/base/error.h"

namespace mdbf::factor {

std::string_view objectiveName(Objective objective)
{
    switch (objective) {
    case Objective::Plain: return "plain";
    case Objective::DiagonalWeighted: return "diag";
    case Objective::Gram: return "gram";
    }
    return "plain";
}

Objective parseObjective(std::string_view text)
{
    if (text == "plain") return Objective::Plain;
    if (text == "diag") return Objective::DiagonalWeighted;
    if (text == "gram") return Objective::Gram;
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
