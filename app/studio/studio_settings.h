#pragma once
// Where the studio finds things and what it remembers between runs (QSettings).

#include <QString>
#include <QStringList>

namespace mdbf::studio {

/// The embedded demo model, relative to the running executable:
/// <dir of executable>/../share/mdbf-studio/models/tiny-llama (build tree and install prefix alike).
QString demoModelPath();

/// Most recently opened model folders, newest first (at most kMaxRecentModels).
QStringList recentModels();

/// Moves `dir` to the front of the recent list (adding it if new) and stores the list.
void addRecentModel(const QString& dir);

/// Removes `dir` from the recent list (e.g. after it failed to open).
void removeRecentModel(const QString& dir);

/// Forgets every recent model.
void clearRecentModels();

/// Entries kept in the recent list.
inline constexpr int kMaxRecentModels = 8;

}  // namespace mdbf::studio

namespace mdbf::studio {

/// The studio's version ("0.1.0").
QString studioVersion();

/// Sets organisation and application names (for QSettings), version and display name.
void configureApplication();

/// Registers the compiled-in resources (icons); safe to call more than once.
void initStudioResources();

}  // namespace mdbf::studio
