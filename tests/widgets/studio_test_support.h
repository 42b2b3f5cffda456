#pragma once
// Helpers of the tests that drive the studio's main window: opening the demo model and finding the
// error dialog the window shows.

#include <memory>

#include <QApplication>
#include <QMessageBox>
#include <QSignalSpy>
#include <QString>

#include <gtest/gtest.h>

#include "main_window.h"
#include "test_fixtures.h"
#include "widget_test_support.h"

namespace mdbf::test {

/// The demo model's directory as a QString.
inline QString demoDir() { return QString::fromStdString(demoModel().string()); }

/// A shown 1400×900 main window with the demo model opened (waits up to 60 s; a failure to load is
/// reported as a test failure and the window is returned anyway).
inline std::unique_ptr<studio::MainWindow> openDemo()
{
    auto window = std::make_unique<studio::MainWindow>();
    window->resize(1400, 900);
    window->show();
    QSignalSpy loaded(window.get(), &studio::MainWindow::modelLoaded);
    window->openModel(demoDir());
    EXPECT_TRUE(waitUntil([&] { return loaded.count() == 1; }, 60000));
    return window;
}

/// The visible message box of the studio named `name`, or null.
inline QMessageBox* findDialog(const char* name)
{
    for (QWidget* w : QApplication::topLevelWidgets())
        if (auto* box = qobject_cast<QMessageBox*>(w); box && box->objectName() == QLatin1String(name) && box->isVisible())
            return box;
    return nullptr;
}

/// The visible error dialog of the studio (object name "errorDialog"), or null.
inline QMessageBox* findErrorDialog() { return findDialog("errorDialog"); }

/// The visible Save / Discard / Cancel question about unsaved changes, or null.
inline QMessageBox* findUnsavedDialog() { return findDialog("unsavedDialog"); }

}  // namespace mdbf::test
