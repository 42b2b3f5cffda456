#include "studio_settings.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QGuiApplication>
#include <QIcon>
#include <QSettings>

namespace mdbf::studio {

namespace {

const QString kRecentKey = QStringLiteral("models/recent");

QString normalized(const QString& dir) { return QDir::cleanPath(QFileInfo(dir).absoluteFilePath()); }

}  // namespace

QString demoModelPath()
{
    return QDir::cleanPath(QCoreApplication::applicationDirPath() +
                           QStringLiteral("/../share/mdbf-studio/models/tiny-llama"));
}

QStringList recentModels() { return QSettings().value(kRecentKey).toStringList(); }

void addRecentModel(const QString& dir)
{
    const QString path = normalized(dir);
    QStringList list = recentModels();
    list.removeAll(path);
    list.prepend(path);
    while (list.size() > kMaxRecentModels) list.removeLast();
    QSettings().setValue(kRecentKey, list);
}

void removeRecentModel(const QString& dir)
{
    QStringList list = recentModels();
    list.removeAll(normalized(dir));
    QSettings().setValue(kRecentKey, list);
}

void clearRecentModels() { QSettings().remove(kRecentKey); }

}  // namespace mdbf::studio

#ifndef MDBF_VERSION
#define MDBF_VERSION "0.0.0"
#endif

// Q_INIT_RESOURCE must be used outside any namespace.
static void initResourcesOnce()
{
    static const bool done = [] {
        Q_INIT_RESOURCE(mdbf_studio);
        return true;
    }();
    (void)done;
}

namespace mdbf::studio {

QString studioVersion() { return QStringLiteral(MDBF_VERSION); }

void configureApplication()
{
    QCoreApplication::setOrganizationName(QStringLiteral("MDBF"));
    QCoreApplication::setApplicationName(QStringLiteral("mdbf-studio"));
    QCoreApplication::setApplicationVersion(studioVersion());
    QGuiApplication::setApplicationDisplayName(QStringLiteral("MDBF Studio"));
    initStudioResources();
    QGuiApplication::setWindowIcon(QIcon(QStringLiteral(":/icons/mdbf-studio.svg")));
}

void initStudioResources() { initResourcesOnce(); }

}  // namespace mdbf::studio
