#include "mdbf/factor/factor_result.h"

#include <utility>

#include "mdbf/base/error.h"

namespace mdbf::factor {

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
