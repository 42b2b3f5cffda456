// The Generate panel: both sides stream what the core generates for the original model and for the
// model with the configured layers swapped in; a run can be stopped; no configuration is said so.

#include <QSignalSpy>

#include <gtest/gtest.h>

#include "generate_panel.h"
#include "job_runner.h"
#include "layer_inspector_panel.h"
#include "main_window.h"
#include "model_commands.h"
#include "mdbf/pipeline/quantize.h"
#include "mdbf/generate/generator.h"
#include "mdbf/io/checkpoint.h"
#include "mdbf/model/factorized_linear.h"
#include "mdbf/model/transformer.h"
#include "factorization_service.h"
#include "model_apply_panel.h"
#include "model_session.h"
#include "studio_document.h"
#include "studio_test_support.h"

namespace mdbf::studio {
namespace {

using test::waitUntil;

/// Greedy generation of `tokens` tokens from `prompt`, computed here with the core directly.
std::string greedyText(const model::Transformer& model, const Tokenizer& tokenizer, const std::string& prompt, int tokens)
{
    generate::GenerationOptions options;
    options.maxTokens = tokens;
    return generate::generate(model, tokenizer, tokenizer.encode(prompt), options).text;
}

TEST(GeneratePanel, WithoutAConfigurationTheConfiguredSideSaysSo)
{
    JobRunner runner;
    StudioDocument document;
    GeneratePanel panel(&runner, &document);
    document.setSession(ModelSession::load(test::demoModel()));
    panel.setPrompt(QStringLiteral("The garden was"));
    panel.setMaxTokens(12);
    QSignalSpy finished(&panel, &GeneratePanel::generationFinished);
    panel.generate();
    ASSERT_TRUE(waitUntil([&] { return finished.count() == 1 && !panel.isBusy(); }, 60000));
    const model::Transformer original = model::Transformer::load(test::demoModel());
    const Tokenizer tokenizer = Tokenizer::fromFile(test::demoModel() / "tokenizer.json");
    EXPECT_EQ(panel.originalText().toStdString(), greedyText(original, tokenizer, "The garden was", 12));
    EXPECT_TRUE(panel.originalStatus().contains(QStringLiteral("tok/s"))) << panel.originalStatus().toStdString();
    EXPECT_TRUE(panel.configuredText().isEmpty());
    EXPECT_TRUE(panel.configuredStatus().contains(QStringLiteral("No layer is factorized")));
}

TEST(GeneratePanel, BothSidesShowWhatTheCoreGeneratesForTheirModel)
{
    auto window = test::openDemo();
    ASSERT_TRUE(waitUntil([&] { return !window->inspector()->isBusy(); }, 60000));
    GeneratePanel* panel = window->generatePanel();
    const std::string prompt = "The garden was";
    panel->setPrompt(QString::fromStdString(prompt));
    panel->setMaxTokens(12);
    panel->setTemperature(0.0);

    // Factorize three layers (beside whatever the window already holds); the configured side must
    // then run exactly that configuration.
    QSignalSpy applied(window->factorizationService(), &FactorizationService::applyEnded);
    ASSERT_TRUE(window->commands()->applySettingsToLayers({QStringLiteral("model.layers.0.mlp.up_proj"),
                                               QStringLiteral("model.layers.1.self_attn.q_proj"),
                                               QStringLiteral("model.layers.3.mlp.down_proj")}));
    ASSERT_TRUE(waitUntil([&] { return applied.count() == 1 && !window->factorizationService()->isApplying(); }, 120000));
    ASSERT_GE(window->configuration().size(), 3u);
    QSignalSpy finished(panel, &GeneratePanel::generationFinished);
    panel->generate();
    ASSERT_TRUE(waitUntil([&] { return finished.count() == 1 && !panel->isBusy(); }, 60000));

    const std::shared_ptr<const ModelSession> session = window->session();
    const model::Transformer original = model::Transformer::load(test::demoModel());
    model::Transformer configured = model::Transformer::load(test::demoModel());
    for (const auto& [name, f] : window->configuration()) {
        configured.replaceLinear(name.toStdString(), std::make_shared<model::FactorizedLinear>(f->result->paths));
    }
    EXPECT_EQ(panel->originalText().toStdString(), greedyText(original, *session->tokenizer(), prompt, 12));
    EXPECT_EQ(panel->configuredText().toStdString(), greedyText(configured, *session->tokenizer(), prompt, 12));
    EXPECT_NE(panel->configuredText(), panel->originalText());
    EXPECT_TRUE(panel->configuredStatus().contains(QStringLiteral("stopped: max_tokens")))
        << panel->configuredStatus().toStdString();
}

TEST(GeneratePanel, StopEndsARunAndKeepsItsText)
{
    auto window = test::openDemo();
    GeneratePanel* panel = window->generatePanel();
    panel->setPrompt(QStringLiteral("Long ago"));
    panel->setMaxTokens(4000);
    QSignalSpy finished(panel, &GeneratePanel::generationFinished);
    panel->generate();
    ASSERT_TRUE(panel->isBusy());
    ASSERT_TRUE(waitUntil([&] { return panel->originalText().size() > 20; }, 60000));
    panel->stop();
    ASSERT_TRUE(waitUntil([&] { return finished.count() == 1 && !panel->isBusy(); }, 30000));
    EXPECT_GT(panel->originalText().size(), 20);
    EXPECT_TRUE(panel->originalStatus().contains(QStringLiteral("stopped: cancelled"))) << panel->originalStatus().toStdString();
}

}  // namespace
}  // namespace mdbf::studio
