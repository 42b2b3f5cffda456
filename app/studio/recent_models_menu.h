#pragma once
// File ▸ Open Recent: the model folders opened lately (studio_settings), newest first, and Clear List.

#include <QMenu>

namespace mdbf::studio {

class RecentModelsMenu : public QMenu {
    Q_OBJECT
public:
    explicit RecentModelsMenu(QWidget* parent = nullptr);

    /// Puts `dir` first in the remembered list and in the menu.
    void addModel(const QString& dir);

signals:
    /// The user chose the folder `dir`.
    void openRequested(const QString& dir);

private:
    void rebuild();
};

}  // namespace mdbf::studio
