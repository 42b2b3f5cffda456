#pragma once
// The user's choice of factorization for one layer, as set in the inspector's control bar.

#include <QString>

#include "mdbf/factor/factorizer.h"

namespace mdbf::studio {

/// Method, budget and refinement settings. `bpw` keeps the decimal the user chose.
struct FactorSettings {
    factor::Method method = factor::Method::Mdbf;
    int l = 2;
    factor::Bpw bpw = factor::Bpw::parse("1");
    int paths = 1;
    int iterations = 260;
    factor::Objective objective = factor::Objective::Plain;

    /// The envelope rank actually used (1 for DBF, whatever the l control says).
    int effectiveL() const { return method == factor::Method::Dbf ? 1 : l; }

    /// Engine options for these settings; `iterations` overrides the outer iteration count.
    factor::FactorizerOptions options(int outerIterations) const;

    /// Cache key of the closed form ("mdbf|l4|1.5|p1|plain") and of a refinement (adds "|t260").
    QString closedFormKey() const;
    QString refinedKey() const;

    /// "MDBF" / "DBF".
    QString methodLabel() const;

    /// "plain" / "diag".
    QString objectiveLabel() const;

    bool operator==(const FactorSettings&) const = default;
};

}  // namespace mdbf::studio
