#include "recent_models_menu.h"

#include <QFileInfo>

#include "studio_settings.h"

namespace mdbf::studio {

RecentModelsMenu::RecentModelsMenu(QWidget* parent) : QMenu(tr("Open &Recent"), parent)
{
    setToolTipsVisible(true);
    rebuild();
}

void RecentModelsMenu::addModel(const QString& dir)
{
    addRecentModel(dir);
    rebuild();
}

void RecentModelsMenu::rebuild()
{
    clear();
    const QStringList recent = recentModels();
    for (const QString& dir : recent) {
        QAction* a = addAction(QFileInfo(dir).fileName() + QStringLiteral("  —  ") + dir);
        a->setToolTip(tr("Open %1").arg(dir));
        connect(a, &QAction::triggered, this, [this, dir] { emit openRequested(dir); });
    }
    if (!recent.isEmpty()) {
        addSeparator();
        QAction* clearList = addAction(tr("Clear List"));
        clearList->setToolTip(tr("Forget the recently opened models"));
        connect(clearList, &QAction::triggered, this, [this] {
            clearRecentModels();
            rebuild();
        });
    }
    setEnabled(!recent.isEmpty());
}

}  // namespace mdbf::studio
