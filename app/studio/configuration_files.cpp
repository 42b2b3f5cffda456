#include "configuration_files.h"

#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QMessageBox>
#include <QPushButton>
#include <QSettings>

#include "configuration_exporter.h"
#include "factor_settings.h"
#include "factorization_service.h"
#include "mdbf/base/error.h"
#include "mdbf/factor/quant_config.h"
#include "mdbf/widgets/layer_tree_model.h"
#include "model_session.h"
#include "studio_document.h"

namespace mdbf::studio {

ConfigurationFiles::ConfigurationFiles(QWidget* window, StudioDocument* document, ConfigurationExporter* exporter,
                                       FactorizationService* service)
    : QObject(window), m_window(window), m_document(document), m_exporter(exporter), m_service(service),
      m_layers(document->layers())
{
    connect(m_service, &FactorizationService::applyEnded, this, &ConfigurationFiles::onApplyEnded);
}

bool ConfigurationFiles::saveTo(const QString& path)
{
    if (!m_document->session()) {
        emit errorReported(tr("Could not save the configuration"), tr("No model is open."));
        return false;
    }
    if (!m_exporter->exportConfigJson(*m_document->session(), m_document->configuration(), path)) return false;
    m_document->markSaved(path);
    return true;
}

bool ConfigurationFiles::save()
{
    if (m_document->filePath().isEmpty()) return saveAs();
    return saveTo(m_document->filePath());
}

bool ConfigurationFiles::saveAs()
{
    if (!m_document->session()) {
        emit statusMessage(tr("Open a model first"));
        return false;
    }
    const QString base = m_document->filePath().isEmpty()
                             ? QStringLiteral("%1-quant-config").arg(m_document->session()->name())
                             : QFileInfo(m_document->filePath()).completeBaseName();
    const QString path = askSavePath(tr("Save configuration"), base, QStringLiteral("json"), tr("JSON configuration (*.json)"));
    return !path.isEmpty() && saveTo(path);
}

QString ConfigurationFiles::askSavePath(const QString& title, const QString& baseName, const QString& suffix,
                                        const QString& filter)
{
    QSettings settings;
    QString dir = settings.value(QStringLiteral("export/dir")).toString();
    if (dir.isEmpty() || !QFileInfo(dir).isDir()) dir = QDir::homePath();
    QString path = QFileDialog::getSaveFileName(m_window, title, dir + QLatin1Char('/') + baseName + QLatin1Char('.') + suffix,
                                                filter);
    if (path.isEmpty()) return {};
    if (QFileInfo(path).suffix().isEmpty()) path += QLatin1Char('.') + suffix;
    settings.setValue(QStringLiteral("export/dir"), QFileInfo(path).absolutePath());
    return path;
}

bool ConfigurationFiles::load(const QString& path)
{
    const QString title = tr("Could not open the configuration");
    if (!m_document->session()) {
        emit errorReported(title, tr("%1: open the model it is for first.").arg(path));
        return false;
    }
    if (m_service->isApplying()) {
        emit errorReported(title, tr("An apply is running; cancel it or wait for it to finish."));
        return false;
    }
    factor::QuantConfig config;
    try {
        config = factor::QuantConfig::fromFile(path.toStdString());
    } catch (const std::exception& e) {
        emit errorReported(title, QString::fromUtf8(e.what()));
        return false;
    }
    std::vector<FactorizationService::LayerRequest> requests;
    QStringList dense;
    for (const QString& key : m_layers->layerKeys()) {
        const widgets::LayerEntry* entry = m_layers->layer(key);
        if (!entry || !entry->factorizable) continue;
        const factor::LayerQuantSettings s = config.resolve(key.toStdString());
        if (s.dense) dense << key;
        else requests.push_back({key, FactorSettings::fromQuant(s, m_document->calibrationTag())});
    }
    m_document->beginBatch(tr("Open configuration %1").arg(QFileInfo(path).fileName()));
    if (!dense.isEmpty()) m_document->revertLayers(dense);
    if (requests.empty()) {
        m_document->endBatch();
        m_document->markSaved(path);
        return true;
    }
    m_loadingPath = path;
    if (!m_service->applyToModel(requests, tr("configuration %1").arg(QFileInfo(path).fileName()))) {
        m_loadingPath.clear();
        m_document->endBatch();
        emit errorReported(title, tr("%1: %2").arg(path, m_service->refusalText()));
        return false;
    }
    return true;
}

void ConfigurationFiles::onApplyEnded(bool cancelled)
{
    m_document->endBatch();
    if (m_loadingPath.isEmpty()) return;
    if (!cancelled) m_document->markSaved(m_loadingPath);
    m_loadingPath.clear();
}

void ConfigurationFiles::openDialog()
{
    if (!m_document->session()) {
        emit statusMessage(tr("Open the model the configuration is for first"));
        return;
    }
    whenDiscardable(tr("opening another configuration"), [this] {
        QSettings settings;
        const QString dir = settings.value(QStringLiteral("export/dir"), QDir::homePath()).toString();
        const QString path =
            QFileDialog::getOpenFileName(m_window, tr("Open configuration"), dir, tr("JSON configuration (*.json)"));
        if (!path.isEmpty()) load(path);
    });
}

void ConfigurationFiles::whenDiscardable(const QString& action, std::function<void()> proceed)
{
    if (!m_document->isModified()) {
        proceed();
        return;
    }
    if (m_question) m_question->close();
    const int layers = static_cast<int>(m_document->configuration().size());
    auto* box = new QMessageBox(QMessageBox::Warning, tr("Unsaved configuration"),
                                tr("The configuration (%n factorized layer(s)) has changes that are not saved.", nullptr, layers),
                                QMessageBox::NoButton, m_window);
    box->setObjectName(QStringLiteral("unsavedDialog"));
    box->setInformativeText(tr("Save them before %1?").arg(action));
    box->setStandardButtons(QMessageBox::Save | QMessageBox::Discard | QMessageBox::Cancel);
    box->setDefaultButton(QMessageBox::Save);
    box->setAttribute(Qt::WA_DeleteOnClose);
    connect(box, &QMessageBox::finished, this, [this, box, proceed = std::move(proceed)](int) {
        const QMessageBox::StandardButton answer = box->standardButton(box->clickedButton());
        if (answer == QMessageBox::Discard || (answer == QMessageBox::Save && save())) proceed();
    });
    m_question = box;
    box->open();  // window-modal without a nested event loop
}

}  // namespace mdbf::studio
