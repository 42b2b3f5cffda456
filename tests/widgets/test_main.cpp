// Runs the GUI tests inside one QApplication, offscreen unless a platform is set, with settings and
// the decomposition cache written to temporary directories instead of the user's.

#include <gtest/gtest.h>

#include <QApplication>
#include <QSettings>
#include <QTemporaryDir>

#include "studio_settings.h"

int main(int argc, char** argv)
{
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
    QTemporaryDir settingsDir;
    QSettings::setDefaultFormat(QSettings::IniFormat);
    QSettings::setPath(QSettings::IniFormat, QSettings::UserScope, settingsDir.path());
    QTemporaryDir decompositionDir;
    qputenv("MDBF_CACHE_DIR", decompositionDir.path().toUtf8());
    QApplication app(argc, argv);
    mdbf::studio::configureApplication();
    QCoreApplication::setOrganizationName(QStringLiteral("MDBF-test"));
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
